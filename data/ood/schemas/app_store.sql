-- An app marketplace: developers, apps, releases, installs and reviews (snake_case, 5 tables).
CREATE TABLE developers (developer_id INTEGER PRIMARY KEY, studio_name TEXT, country TEXT, verified INTEGER);
CREATE TABLE apps (app_id INTEGER PRIMARY KEY, developer_id INTEGER REFERENCES developers(developer_id), app_name TEXT, category TEXT, price_usd REAL, min_age INTEGER);
CREATE TABLE releases (release_id INTEGER PRIMARY KEY, app_id INTEGER REFERENCES apps(app_id), version TEXT, released_on DATE, size_mb REAL);
CREATE TABLE installs (app_id INTEGER REFERENCES apps(app_id), install_month TEXT, installs INTEGER, uninstalls INTEGER, PRIMARY KEY (app_id, install_month));
CREATE TABLE app_reviews (review_id INTEGER PRIMARY KEY, app_id INTEGER REFERENCES apps(app_id), stars INTEGER, body TEXT, posted_on DATE);
INSERT INTO developers VALUES (1, 'Pinecone Games', 'Finland', 1), (2, 'Dailyware', 'India', 1), (3, 'Moonbeam Apps', 'Brazil', 0);
INSERT INTO apps VALUES (1, 1, 'Fjord Rush', 'game', 0, 9), (2, 1, 'Rune Puzzle', 'game', 2.99, 12), (3, 2, 'Tiny Budget', 'finance', 0, 17), (4, 2, 'FocusTimer', 'productivity', 1.99, 4), (5, 3, 'StarChart Kids', 'education', 0, 4);
INSERT INTO releases VALUES (1, 1, '1.0', '2023-01-10', 120), (2, 1, '1.1', '2023-03-02', 124), (3, 2, '1.0', '2023-04-18', 88), (4, 3, '2.0', '2023-02-01', 35), (5, 3, '2.1', '2023-05-05', 36), (6, 4, '1.0', '2023-06-20', 12), (7, 5, '0.9', '2023-07-30', 210), (8, 1, '1.2', '2023-08-15', 131);
INSERT INTO installs VALUES (1, '2023-06', 52000, 8000), (1, '2023-07', 61000, 9500), (2, '2023-06', 4200, 600), (2, '2023-07', 3900, 700), (3, '2023-06', 18000, 2500), (3, '2023-07', 21000, 2100), (4, '2023-07', 2500, 300), (5, '2023-07', 7000, 3200);
INSERT INTO app_reviews VALUES (1, 1, 5, 'addictive', '2023-06-02'), (2, 1, 4, 'great but ads', '2023-06-10'), (3, 2, 2, 'too hard', '2023-05-01'), (4, 3, 5, 'saved me money', '2023-06-15'), (5, 3, 4, 'solid', '2023-07-01'), (6, 5, 1, 'crashes', '2023-08-02'), (7, 4, 5, 'simple', '2023-07-12'), (8, 1, 3, 'battery drain', '2023-07-20');
