-- A winery: vineyard blocks, grape varieties, harvest lots, wines and tastings (abbreviated names).
CREATE TABLE vyd_blocks (blk_id INTEGER PRIMARY KEY, blk_cd TEXT, slope_pct REAL, soil TEXT, area_ha REAL);
CREATE TABLE grape_vars (var_id INTEGER PRIMARY KEY, var_nm TEXT, color TEXT);
CREATE TABLE hvst_lots (lot_id INTEGER PRIMARY KEY, blk_id INTEGER REFERENCES vyd_blocks(blk_id), var_id INTEGER REFERENCES grape_vars(var_id), hvst_dt DATE, wt_kg REAL, brix REAL);
CREATE TABLE wines (wine_id INTEGER PRIMARY KEY, wine_nm TEXT, vintage INTEGER, var_id INTEGER REFERENCES grape_vars(var_id), btl_cnt INTEGER, rtl_prc REAL);
CREATE TABLE tastings (tst_id INTEGER PRIMARY KEY, wine_id INTEGER REFERENCES wines(wine_id), taster TEXT, scr INTEGER, tst_dt DATE);
INSERT INTO vyd_blocks VALUES (1, 'A-North', 12.5, 'limestone', 3.2), (2, 'A-South', 8.0, 'clay', 4.1), (3, 'B-Ridge', 18.0, 'schist', 2.4), (4, 'C-Flat', 2.0, 'loam', 5.5);
INSERT INTO grape_vars VALUES (1, 'Pinot Noir', 'red'), (2, 'Chardonnay', 'white'), (3, 'Syrah', 'red'), (4, 'Riesling', 'white');
INSERT INTO hvst_lots VALUES (1, 1, 1, '2022-09-18', 6200, 23.1), (2, 2, 2, '2022-09-05', 9100, 21.8), (3, 3, 3, '2022-10-02', 4800, 25.4), (4, 4, 4, '2022-09-25', 12000, 19.9), (5, 1, 1, '2023-09-20', 5900, 22.7), (6, 2, 2, '2023-09-08', 8700, 22.2), (7, 3, 3, '2023-10-05', 5100, 24.9), (8, 4, 2, '2023-09-12', 7600, 21.0);
INSERT INTO wines VALUES (1, 'Limestone Pinot', 2022, 1, 7800, 34.0), (2, 'Clay Chardonnay', 2022, 2, 11500, 22.0), (3, 'Ridge Syrah', 2022, 3, 5600, 41.0), (4, 'Flat Riesling', 2022, 4, 15200, 16.5), (5, 'Limestone Pinot', 2023, 1, 7300, 36.0), (6, 'Estate Chardonnay', 2023, 2, 20100, 24.0), (7, 'Ridge Syrah', 2023, 3, 6000, 44.0);
INSERT INTO tastings VALUES (1, 1, 'J. Moreau', 91, '2023-05-01'), (2, 1, 'K. Oduya', 89, '2023-06-11'), (3, 2, 'J. Moreau', 86, '2023-05-01'), (4, 3, 'K. Oduya', 94, '2023-07-02'), (5, 3, 'L. Brandt', 92, '2023-07-20'), (6, 4, 'L. Brandt', 84, '2023-04-15'), (7, 5, 'J. Moreau', 90, '2024-05-03'), (8, 6, 'K. Oduya', 88, '2024-05-10');
