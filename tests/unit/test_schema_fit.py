"""A wide schema is fitted to the prompt budget: the tables the question needs stay, the rest are named."""
from __future__ import annotations

import pytest

from sql.schema_fit import SchemaFitError, fit_schema, rank_tables, tables_of

SHOP = """
CREATE TABLE stores (store_id INT PRIMARY KEY, city TEXT);
CREATE TABLE "Sales Orders" (order_id INT PRIMARY KEY, store_id INT REFERENCES stores(store_id), total REAL);
CREATE TABLE employees (emp_id INT PRIMARY KEY, full_name TEXT, hired DATE);
CREATE TABLE suppliers (supplier_id INT PRIMARY KEY, company TEXT, country TEXT);
CREATE TABLE shipments (shipment_id INT PRIMARY KEY, supplier_id INT REFERENCES suppliers(supplier_id), weight_kg REAL);
"""


def test_tables_are_read_with_quoted_names():
    assert [n for n, _ in tables_of(SHOP)] == ["stores", "Sales Orders", "employees", "suppliers", "shipments"]


def test_the_question_s_tables_and_their_fk_neighbours_rank_first():
    ranked = rank_tables(SHOP, "total of sales orders per city")
    assert set(ranked[:2]) == {"Sales Orders", "stores"}
    assert set(rank_tables(SHOP, "heaviest shipment and its supplier's country")[:2]) == {"shipments", "suppliers"}


def test_a_schema_that_fits_is_returned_whole():
    assert fit_schema(SHOP, "anything", fits=lambda d: True) == (SHOP, [])


def test_a_wide_schema_keeps_what_the_question_needs_and_names_the_rest():
    budget = len(tables_of(SHOP)[0][1]) + len(tables_of(SHOP)[1][1]) + 5   # room for two tables
    kept, left = fit_schema(SHOP, "total of sales orders per city", fits=lambda d: len(d) <= budget)
    assert "CREATE TABLE stores" in kept and '"Sales Orders"' in kept
    assert left == ["employees", "suppliers", "shipments"]
    assert kept.index("stores") < kept.index("Sales Orders")          # schema order kept


def test_nothing_fits_is_a_clear_error():
    with pytest.raises(SchemaFitError, match="alone fits"):
        fit_schema(SHOP, "city of each store", fits=lambda d: False)
