-- A regional election: districts, parties, candidates, polling stations and vote counts ("Quoted Names").
CREATE TABLE "Districts" ("District ID" INTEGER PRIMARY KEY, "District Name" TEXT, "Registered Voters" INTEGER);
CREATE TABLE "Parties" ("Party ID" INTEGER PRIMARY KEY, "Party Name" TEXT, "Founded" INTEGER, "Ideology" TEXT);
CREATE TABLE "Candidates" ("Candidate ID" INTEGER PRIMARY KEY, "Candidate Name" TEXT, "Party ID" INTEGER REFERENCES "Parties"("Party ID"), "District ID" INTEGER REFERENCES "Districts"("District ID"), "Incumbent" INTEGER);
CREATE TABLE "Polling Stations" ("Station ID" INTEGER PRIMARY KEY, "District ID" INTEGER REFERENCES "Districts"("District ID"), "Address" TEXT, "Accessible" INTEGER);
CREATE TABLE "Vote Counts" ("Station ID" INTEGER REFERENCES "Polling Stations"("Station ID"), "Candidate ID" INTEGER REFERENCES "Candidates"("Candidate ID"), "Votes" INTEGER, PRIMARY KEY ("Station ID", "Candidate ID"));
INSERT INTO "Districts" VALUES (1, 'Riverbend', 42000), (2, 'Highmoor', 31000), (3, 'Saltmarsh', 18500);
INSERT INTO "Parties" VALUES (1, 'Green Union', 1991, 'green'), (2, 'Civic Alliance', 1978, 'centre'), (3, 'Labour Front', 1952, 'left'), (4, 'Free Market Party', 2004, 'liberal');
INSERT INTO "Candidates" VALUES (1, 'Ada Nwosu', 1, 1, 0), (2, 'Ben Clarke', 2, 1, 1), (3, 'Carla Reyes', 3, 1, 0), (4, 'Dev Patel', 2, 2, 0), (5, 'Elsa Berg', 4, 2, 1), (6, 'Femi Ade', 3, 3, 1), (7, 'Gina Holt', 1, 3, 0);
INSERT INTO "Polling Stations" VALUES (1, 1, '12 Quay Rd', 1), (2, 1, 'Town Hall', 1), (3, 2, 'Moor School', 0), (4, 2, 'Chapel Lane', 1), (5, 3, 'Harbour Inn', 0);
INSERT INTO "Vote Counts" VALUES (1, 1, 3100), (1, 2, 4200), (1, 3, 1900), (2, 1, 2800), (2, 2, 3300), (2, 3, 2500), (3, 4, 5100), (3, 5, 4700), (4, 4, 3900), (4, 5, 4400), (5, 6, 6100), (5, 7, 5200);
