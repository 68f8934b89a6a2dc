-- A theatre company: venues, productions, performances, actors, casting and ticket sales (camelCase, 7 tables).
CREATE TABLE venues (venueId INTEGER PRIMARY KEY, venueName TEXT, city TEXT, seatCount INTEGER);
CREATE TABLE productions (productionId INTEGER PRIMARY KEY, title TEXT, playwright TEXT, genre TEXT, premiereDate DATE);
CREATE TABLE performances (performanceId INTEGER PRIMARY KEY, productionId INTEGER REFERENCES productions(productionId), venueId INTEGER REFERENCES venues(venueId), showDate DATE, isMatinee INTEGER);
CREATE TABLE actors (actorId INTEGER PRIMARY KEY, stageName TEXT, agency TEXT, debutYear INTEGER);
CREATE TABLE castings (productionId INTEGER REFERENCES productions(productionId), actorId INTEGER REFERENCES actors(actorId), roleName TEXT, isLead INTEGER, PRIMARY KEY (productionId, actorId));
CREATE TABLE ticketSales (saleId INTEGER PRIMARY KEY, performanceId INTEGER REFERENCES performances(performanceId), seatsSold INTEGER, revenue REAL, channel TEXT);
CREATE TABLE reviews (reviewId INTEGER PRIMARY KEY, productionId INTEGER REFERENCES productions(productionId), outlet TEXT, stars INTEGER);
INSERT INTO venues VALUES (1, 'The Lantern', 'Bristol', 420), (2, 'Old Vic Annex', 'London', 280), (3, 'Quayside Stage', 'Leeds', 600);
INSERT INTO productions VALUES (1, 'The Glass Orchard', 'M. Ekwueme', 'drama', '2023-02-10'), (2, 'Salt and Thunder', 'J. Halloran', 'comedy', '2023-05-20'), (3, 'Midnight Ledger', 'M. Ekwueme', 'thriller', '2023-09-01'), (4, 'Paper Kings', 'R. Osei', 'musical', '2024-01-15');
INSERT INTO performances VALUES (1, 1, 1, '2023-02-10', 0), (2, 1, 1, '2023-02-11', 1), (3, 1, 2, '2023-03-01', 0), (4, 2, 3, '2023-05-20', 0), (5, 2, 3, '2023-05-21', 1), (6, 3, 2, '2023-09-01', 0), (7, 3, 1, '2023-09-15', 0), (8, 4, 3, '2024-01-15', 0), (9, 4, 3, '2024-01-16', 1);
INSERT INTO actors VALUES (1, 'Iris Vale', 'Northlight', 2009), (2, 'Kofi Mensah', 'Blue Door', 2015), (3, 'Rosa Lind', 'Northlight', 2001), (4, 'Theo Marsh', 'Freelance', 2019), (5, 'Anya Petrov', 'Blue Door', 2012);
INSERT INTO castings VALUES (1, 1, 'Eleanor', 1), (1, 2, 'Samuel', 0), (2, 3, 'Mrs Pike', 1), (2, 4, 'The Boy', 0), (3, 1, 'Detective Rowe', 1), (3, 5, 'Vera', 0), (4, 2, 'King Ansel', 1), (4, 4, 'Jester', 0), (4, 5, 'Queen Mira', 1);
INSERT INTO ticketSales VALUES (1, 1, 380, 11400, 'online'), (2, 2, 250, 6250, 'box office'), (3, 3, 270, 9450, 'online'), (4, 4, 510, 15300, 'online'), (5, 5, 330, 8250, 'box office'), (6, 6, 240, 8400, 'online'), (7, 7, 300, 9000, 'online'), (8, 8, 590, 23600, 'online'), (9, 9, 420, 14700, 'box office');
INSERT INTO reviews VALUES (1, 1, 'The Courier', 4), (2, 1, 'Stage Weekly', 5), (3, 2, 'The Courier', 3), (4, 3, 'Night Out', 4), (5, 4, 'Stage Weekly', 5), (6, 4, 'The Courier', 4), (7, 3, 'Stage Weekly', 2);
