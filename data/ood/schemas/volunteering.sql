-- A volunteer network: organizations, events, shifts, volunteers and sign-ups (snake_case, 5 tables).
CREATE TABLE organizations (org_id INTEGER PRIMARY KEY, org_name TEXT, cause TEXT, city TEXT);
CREATE TABLE volunteers (vol_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, city TEXT, has_first_aid INTEGER, registered DATE);
CREATE TABLE events (event_id INTEGER PRIMARY KEY, org_id INTEGER REFERENCES organizations(org_id), event_name TEXT, event_date DATE, needed_volunteers INTEGER);
CREATE TABLE shifts (shift_id INTEGER PRIMARY KEY, event_id INTEGER REFERENCES events(event_id), starts_at TEXT, hours REAL);
CREATE TABLE signups (shift_id INTEGER REFERENCES shifts(shift_id), vol_id INTEGER REFERENCES volunteers(vol_id), attended INTEGER, PRIMARY KEY (shift_id, vol_id));
INSERT INTO organizations VALUES (1, 'Food Bridge', 'hunger', 'Porto'), (2, 'Green Streets', 'environment', 'Porto'), (3, 'Read Together', 'literacy', 'Braga');
INSERT INTO volunteers VALUES (1, 'Ana', 'Costa', 'Porto', 1, '2022-01-10'), (2, 'Rui', 'Matos', 'Porto', 0, '2022-03-02'), (3, 'Beatriz', 'Lopes', 'Braga', 1, '2023-05-18'), (4, 'Tiago', 'Sousa', 'Porto', 0, '2023-07-07'), (5, 'Ines', 'Faria', 'Braga', 0, '2024-01-20'), (6, 'Duarte', 'Reis', 'Porto', 1, '2024-02-01');
INSERT INTO events VALUES (1, 1, 'Winter Food Drive', '2024-01-13', 6), (2, 2, 'River Cleanup', '2024-02-03', 8), (3, 3, 'Story Hour', '2024-02-10', 3), (4, 1, 'Pantry Sorting', '2024-02-17', 4);
INSERT INTO shifts VALUES (1, 1, '2024-01-13 08:00', 4), (2, 1, '2024-01-13 12:00', 4), (3, 2, '2024-02-03 09:00', 3), (4, 3, '2024-02-10 15:00', 2), (5, 4, '2024-02-17 10:00', 5);
INSERT INTO signups VALUES (1, 1, 1), (1, 2, 1), (2, 2, 0), (2, 4, 1), (3, 1, 1), (3, 2, 1), (3, 4, 1), (4, 3, 1), (4, 5, 1), (5, 1, 1), (5, 4, 0);
