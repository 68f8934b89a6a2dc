-- City public transit: lines, stops, line stops, depots, vehicles, drivers, trips and fare taps (snake_case, 8 tables).
CREATE TABLE depots (depot_id INTEGER PRIMARY KEY, depot_name TEXT, district TEXT);
CREATE TABLE lines (line_id INTEGER PRIMARY KEY, line_code TEXT, mode TEXT, depot_id INTEGER REFERENCES depots(depot_id));
CREATE TABLE stops (stop_id INTEGER PRIMARY KEY, stop_name TEXT, zone INTEGER, sheltered INTEGER);
CREATE TABLE line_stops (line_id INTEGER REFERENCES lines(line_id), stop_id INTEGER REFERENCES stops(stop_id), seq INTEGER, PRIMARY KEY (line_id, stop_id));
CREATE TABLE vehicles (vehicle_id INTEGER PRIMARY KEY, fleet_no TEXT, depot_id INTEGER REFERENCES depots(depot_id), fuel TEXT, seats INTEGER, in_service_since INTEGER);
CREATE TABLE drivers (driver_id INTEGER PRIMARY KEY, driver_name TEXT, depot_id INTEGER REFERENCES depots(depot_id), hired DATE);
CREATE TABLE trips (trip_id INTEGER PRIMARY KEY, line_id INTEGER REFERENCES lines(line_id), vehicle_id INTEGER REFERENCES vehicles(vehicle_id), driver_id INTEGER REFERENCES drivers(driver_id), departure TEXT, minutes_late INTEGER);
CREATE TABLE fare_taps (tap_id INTEGER PRIMARY KEY, trip_id INTEGER REFERENCES trips(trip_id), stop_id INTEGER REFERENCES stops(stop_id), card_type TEXT, fare REAL);
INSERT INTO depots VALUES (1, 'North Yard', 'Nordby'), (2, 'River Depot', 'Centrum');
INSERT INTO lines VALUES (1, '4', 'bus', 1), (2, '12', 'bus', 2), (3, 'T1', 'tram', 2);
INSERT INTO stops VALUES (1, 'Central Station', 1, 1), (2, 'Market Hall', 1, 1), (3, 'University', 2, 0), (4, 'Hospital', 2, 1), (5, 'Lake Park', 3, 0), (6, 'Airport', 3, 1);
INSERT INTO line_stops VALUES (1, 1, 1), (1, 3, 2), (1, 5, 3), (2, 1, 1), (2, 2, 2), (2, 4, 3), (2, 6, 4), (3, 2, 1), (3, 3, 2), (3, 4, 3);
INSERT INTO vehicles VALUES (1, 'B-201', 1, 'electric', 70, 2021), (2, 'B-202', 1, 'diesel', 80, 2014), (3, 'B-301', 2, 'hybrid', 75, 2018), (4, 'T-11', 2, 'electric', 180, 2016);
INSERT INTO drivers VALUES (1, 'Nils Berg', 1, '2010-04-01'), (2, 'Aisha Khan', 2, '2018-09-15'), (3, 'Jonas Lind', 2, '2022-01-10'), (4, 'Mei Chen', 1, '2016-06-06');
INSERT INTO trips VALUES (1, 1, 1, 1, '2024-03-04 07:00', 0), (2, 1, 2, 4, '2024-03-04 07:30', 4), (3, 2, 3, 2, '2024-03-04 08:00', 7), (4, 3, 4, 3, '2024-03-04 08:05', 1), (5, 2, 3, 2, '2024-03-04 17:00', 12), (6, 3, 4, 3, '2024-03-04 17:10', 0), (7, 1, 1, 4, '2024-03-04 17:30', 2);
INSERT INTO fare_taps VALUES (1, 1, 1, 'monthly', 0), (2, 1, 3, 'single', 2.5), (3, 2, 1, 'single', 2.5), (4, 3, 1, 'student', 1.2), (5, 3, 2, 'single', 2.5), (6, 3, 6, 'single', 4.0), (7, 4, 2, 'monthly', 0), (8, 5, 4, 'single', 2.5), (9, 6, 3, 'student', 1.2), (10, 7, 5, 'single', 3.0), (11, 5, 6, 'single', 4.0);
