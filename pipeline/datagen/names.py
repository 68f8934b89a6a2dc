"""People's names for generated rows: first and family names of many cultures, combined into unique full names.

    from pipeline.datagen.names import people
    people(rng, 6)        # -> ["Amara Okafor", "Lukas Weber", ...] (no repeats within one call)
"""
from __future__ import annotations

import random

FIRST = (
    "Amara", "Lukas", "Mei", "Santiago", "Aisha", "Mateo", "Yuki", "Olga", "Kwame", "Sofia", "Ravi", "Ingrid",
    "Tomas", "Leila", "Chen", "Fatima", "Diego", "Hana", "Pierre", "Nia", "Arjun", "Elena", "Kenji", "Zanele",
    "Omar", "Chloe", "Bjorn", "Priya", "Jonas", "Lucia", "Tariq", "Anika", "Marek", "Ama", "Hiroshi", "Valentina",
    "Emeka", "Freya", "Dmitri", "Isabel", "Kofi", "Noor", "Samuel", "Yasmin", "Andrei", "Mariana", "Jae-won",
    "Grace", "Luca", "Thandiwe", "Felix", "Aroha", "Nikos", "Carmen", "Tenzin", "Rosa", "Hamid", "Astrid",
    "Malik", "Julia", "Quang", "Eva", "Rafael", "Ayesha", "Liam", "Saoirse", "Kaito", "Paula", "Ibrahim", "Maya",
)
LAST = (
    "Okafor", "Weber", "Zhang", "Garcia", "Rahman", "Rossi", "Tanaka", "Ivanova", "Mensah", "Costa", "Sharma",
    "Larsen", "Novak", "Haddad", "Wang", "Khan", "Fernandez", "Kim", "Dubois", "Nkosi", "Patel", "Popescu",
    "Sato", "Dlamini", "Farouk", "Martin", "Lindqvist", "Nair", "Becker", "Moreno", "Aziz", "Kowalski", "Boateng",
    "Yamamoto", "Silva", "Obi", "Jensen", "Petrov", "Alves", "Asante", "Hussein", "Clarke", "Demir", "Lopez",
    "Nguyen", "Park", "Bianchi", "Ngata", "Papadopoulos", "Ruiz", "Dorje", "Santos", "Karimi", "Berg", "Diallo",
    "Schmidt", "Tran", "Horvat", "Mendes", "Chowdhury", "Walsh", "O'Brien", "Suzuki", "Romero", "Yilmaz", "Reid",
)


def people(rng: random.Random, n: int) -> list[str]:
    """n distinct full names."""
    out: dict[str, None] = {}          # a dict keeps insertion order (a set's order depends on the hash seed)
    while len(out) < n:
        out[f"{rng.choice(FIRST)} {rng.choice(LAST)}"] = None
    return list(out)
