-- A podcast platform: shows, hosts, episodes, listeners and plays (prefixed table names).
CREATE TABLE tbl_show (show_id INTEGER PRIMARY KEY, show_title TEXT, category TEXT, launched DATE, is_explicit INTEGER);
CREATE TABLE tbl_host (host_id INTEGER PRIMARY KEY, host_name TEXT, show_id INTEGER REFERENCES tbl_show(show_id));
CREATE TABLE tbl_episode (episode_id INTEGER PRIMARY KEY, show_id INTEGER REFERENCES tbl_show(show_id), episode_no INTEGER, episode_title TEXT, published DATE, length_sec INTEGER);
CREATE TABLE tbl_listener (listener_id INTEGER PRIMARY KEY, handle TEXT, country TEXT, premium INTEGER);
CREATE TABLE tbl_play (play_id INTEGER PRIMARY KEY, episode_id INTEGER REFERENCES tbl_episode(episode_id), listener_id INTEGER REFERENCES tbl_listener(listener_id), played_on DATE, seconds_listened INTEGER);
INSERT INTO tbl_show VALUES (1, 'Deep Field Notes', 'science', '2020-03-01', 0), (2, 'Kitchen Chaos', 'food', '2021-06-15', 1), (3, 'Ledger Lines', 'business', '2019-11-02', 0);
INSERT INTO tbl_host VALUES (1, 'Priya Raman', 1), (2, 'Sam Ortiz', 1), (3, 'Dee Larkin', 2), (4, 'Marcus Webb', 3);
INSERT INTO tbl_episode VALUES (1, 1, 1, 'Why the Sky Is Dark', '2020-03-01', 2400), (2, 1, 2, 'Listening to Pulsars', '2020-03-15', 2700), (3, 1, 3, 'Dust', '2020-04-01', 1800), (4, 2, 1, 'Burnt Offerings', '2021-06-15', 1500), (5, 2, 2, 'Salt Fat Panic', '2021-07-01', 1650), (6, 3, 1, 'Cash Flow Is a Feeling', '2019-11-02', 3000), (7, 3, 2, 'The Audit', '2019-11-20', 3300), (8, 3, 3, 'Margins', '2019-12-10', 2900), (9, 2, 3, 'Fermentation Station', '2021-07-20', 1700);
INSERT INTO tbl_listener VALUES (1, 'owlcat', 'Ireland', 1), (2, 'runner_j', 'Kenya', 0), (3, 'mira88', 'Chile', 1), (4, 'tbone', 'Canada', 0), (5, 'quietlake', 'Ireland', 0);
INSERT INTO tbl_play VALUES (1, 1, 1, '2023-01-02', 2400), (2, 2, 1, '2023-01-03', 1200), (3, 4, 2, '2023-01-03', 1500), (4, 6, 3, '2023-01-05', 3000), (5, 7, 3, '2023-01-06', 3300), (6, 1, 4, '2023-01-07', 600), (7, 5, 2, '2023-01-08', 1650), (8, 8, 3, '2023-01-09', 1000), (9, 3, 1, '2023-01-10', 1800), (10, 4, 4, '2023-01-11', 300), (11, 1, 2, '2023-01-12', 2400);
