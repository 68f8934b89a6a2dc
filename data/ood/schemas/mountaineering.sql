-- Mountaineering expeditions: peaks, routes, climbers, expeditions and members (snake_case, 5 tables).
CREATE TABLE peaks (peak_id INTEGER PRIMARY KEY, peak_name TEXT, range_name TEXT, height_m INTEGER, country TEXT);
CREATE TABLE routes (route_id INTEGER PRIMARY KEY, peak_id INTEGER REFERENCES peaks(peak_id), route_name TEXT, grade TEXT, first_ascent_year INTEGER);
CREATE TABLE climbers (climber_id INTEGER PRIMARY KEY, climber_name TEXT, nationality TEXT, born INTEGER);
CREATE TABLE expeditions (expedition_id INTEGER PRIMARY KEY, route_id INTEGER REFERENCES routes(route_id), leader_id INTEGER REFERENCES climbers(climber_id), season TEXT, year INTEGER, summited INTEGER, days INTEGER);
CREATE TABLE expedition_members (expedition_id INTEGER REFERENCES expeditions(expedition_id), climber_id INTEGER REFERENCES climbers(climber_id), reached_summit INTEGER, PRIMARY KEY (expedition_id, climber_id));
INSERT INTO peaks VALUES (1, 'Ama Dablam', 'Himalaya', 6812, 'Nepal'), (2, 'Denali', 'Alaska Range', 6190, 'USA'), (3, 'Aconcagua', 'Andes', 6961, 'Argentina'), (4, 'Matterhorn', 'Alps', 4478, 'Switzerland');
INSERT INTO routes VALUES (1, 1, 'Southwest Ridge', 'TD', 1961), (2, 2, 'West Buttress', 'AD', 1951), (3, 2, 'Cassin Ridge', 'ED', 1961), (4, 3, 'Normal Route', 'F', 1897), (5, 4, 'Hornli Ridge', 'AD', 1865);
INSERT INTO climbers VALUES (1, 'Pemba Sherpa', 'Nepal', 1984), (2, 'Ingrid Solheim', 'Norway', 1990), (3, 'Marco Bassi', 'Italy', 1979), (4, 'Julia Kerr', 'USA', 1993), (5, 'Tadeo Mendez', 'Argentina', 1987);
INSERT INTO expeditions VALUES (1, 1, 1, 'autumn', 2022, 1, 21), (2, 2, 4, 'spring', 2022, 1, 18), (3, 3, 3, 'spring', 2023, 0, 25), (4, 4, 5, 'summer', 2023, 1, 14), (5, 5, 3, 'summer', 2023, 1, 2), (6, 1, 2, 'autumn', 2023, 0, 19);
INSERT INTO expedition_members VALUES (1, 1, 1), (1, 2, 1), (2, 4, 1), (2, 2, 0), (3, 3, 0), (3, 4, 0), (4, 5, 1), (4, 3, 1), (5, 3, 1), (5, 2, 1), (6, 2, 0), (6, 1, 0);
