"""The generator's lexicon: domains of entities, attributes, relations, the words people use for them and the
values their rows hold (types.py says the shape). One module per family of domains, each with a DOMAINS
tuple; load_all() gathers them.

Nothing here may come from a yardstick: FORBIDDEN names the domains of data/ood (the OOD yardstick) and of
data/ood2 (the second, looked at only for final figures), and the entity words typical of them; the lexicon
test refuses a domain or entity that uses one. No public benchmark's questions or schemas are copied either.
"""
from __future__ import annotations

# The yardsticks' domains and their telltale entities: no lexicon domain, entity key or table name may use them.
FORBIDDEN_DOMAINS = (
    # data/ood
    "bike_share", "museum", "astronomy", "open_source", "elections", "theater", "theatre", "winery", "podcasts",
    "esports", "zoo", "library", "recipes", "volunteering", "parking", "mountaineering", "ferry", "chess",
    "dog_shelter", "board_game_cafe", "app_store", "city_transit",
    # data/ood2
    "beekeeping", "ski_resort", "blood_bank", "drone_delivery", "film_festival", "language_school", "brewery",
    "coworking", "tattoo_studio", "orchestra", "escape_room", "bakery",
)
FORBIDDEN_ENTITIES = (
    "bike", "docking_station", "rider", "artwork", "exhibit", "gallery", "telescope", "star", "planet",
    "observation", "repository", "commit", "contributor", "pull_request", "election", "candidate", "ballot",
    "constituency", "play", "performance", "actor", "wine", "vineyard", "grape", "podcast", "episode", "esports",
    "enclosure", "keeper", "animal", "loan_copy", "book_copy", "library_member", "recipe", "ingredient",
    "cuisine", "volunteer", "parking_lot", "parking_space", "garage", "permit", "mountain", "climb", "summit",
    "expedition", "ferry", "vessel", "sailing", "telemetry", "chess_game", "chess_player", "dog", "adoption",
    "shelter", "board_game", "cafe_table", "app", "app_review", "install", "transit_route", "bus_stop", "bus",
    "hive", "beekeeper", "honey", "apiary", "ski_lift", "ski_run", "ski_pass", "blood_donor", "donation",
    "blood_unit", "drone", "delivery_drone", "festival", "screening_slot", "language_course", "beer", "brew",
    "coworking_desk", "tattoo", "tattoo_artist", "orchestra_musician", "concert_program", "escape_room",
    "puzzle_room", "bakery_item", "pastry", "bread",
)

def load_all():
    """Every domain of every lexicon module."""
    import importlib
    import pkgutil

    domains = []
    for m in pkgutil.iter_modules(__path__):
        if m.name in ("types",) or m.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{m.name}")
        domains.extend(getattr(mod, "DOMAINS", ()))
    return domains
