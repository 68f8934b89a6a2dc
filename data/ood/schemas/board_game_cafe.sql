-- A board-game cafe: games library, tables, customers, play sessions and orders (camelCase, 5 tables).
CREATE TABLE games (gameId INTEGER PRIMARY KEY, title TEXT, minPlayers INTEGER, maxPlayers INTEGER, avgMinutes INTEGER, complexity REAL);
CREATE TABLE cafeTables (tableId INTEGER PRIMARY KEY, seats INTEGER, zone TEXT);
CREATE TABLE customers (customerId INTEGER PRIMARY KEY, nickname TEXT, isMember INTEGER, firstVisit DATE);
CREATE TABLE sessions (sessionId INTEGER PRIMARY KEY, tableId INTEGER REFERENCES cafeTables(tableId), gameId INTEGER REFERENCES games(gameId), hostCustomerId INTEGER REFERENCES customers(customerId), startedAt TEXT, players INTEGER, minutesPlayed INTEGER);
CREATE TABLE orders (orderId INTEGER PRIMARY KEY, sessionId INTEGER REFERENCES sessions(sessionId), item TEXT, price REAL, qty INTEGER);
INSERT INTO games VALUES (1, 'Harbor Lords', 2, 4, 90, 3.4), (2, 'Tiny Towns', 1, 6, 45, 2.0), (3, 'Cascadia Trails', 1, 4, 40, 1.9), (4, 'Night Heist', 3, 8, 30, 1.2), (5, 'Iron Empires', 2, 5, 180, 4.3);
INSERT INTO cafeTables VALUES (1, 4, 'window'), (2, 6, 'back room'), (3, 2, 'window'), (4, 8, 'back room');
INSERT INTO customers VALUES (1, 'meeple_maz', 1, '2022-04-01'), (2, 'dicey', 0, '2023-08-19'), (3, 'kingmaker', 1, '2021-11-11'), (4, 'sol', 0, '2024-01-06');
INSERT INTO sessions VALUES (1, 1, 1, 1, '2024-01-06 18:00', 4, 110), (2, 2, 4, 2, '2024-01-06 19:30', 6, 40), (3, 3, 3, 3, '2024-01-07 14:00', 2, 45), (4, 4, 5, 3, '2024-01-13 12:00', 5, 240), (5, 1, 2, 4, '2024-01-13 17:00', 3, 50), (6, 2, 1, 1, '2024-01-20 18:00', 3, 95), (7, 3, 2, 2, '2024-01-21 15:00', 3, 35);
INSERT INTO orders VALUES (1, 1, 'nachos', 8.5, 2), (2, 1, 'lemonade', 3.0, 4), (3, 2, 'pizza', 14.0, 2), (4, 3, 'tea', 2.5, 2), (5, 4, 'pizza', 14.0, 3), (6, 4, 'cola', 3.0, 5), (7, 5, 'tea', 2.5, 3), (8, 6, 'nachos', 8.5, 1), (9, 7, 'cola', 3.0, 2);
