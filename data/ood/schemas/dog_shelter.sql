-- An animal shelter: shelters, dogs, adopters, adoptions and vet checks (PascalCase, 5 tables).
CREATE TABLE Shelters (ShelterId INTEGER PRIMARY KEY, ShelterName TEXT, Town TEXT, Kennels INTEGER);
CREATE TABLE Dogs (DogId INTEGER PRIMARY KEY, Name TEXT, Breed TEXT, AgeYears REAL, ShelterId INTEGER REFERENCES Shelters(ShelterId), ArrivedOn DATE, IsNeutered INTEGER);
CREATE TABLE Adopters (AdopterId INTEGER PRIMARY KEY, FullName TEXT, HasGarden INTEGER, Town TEXT);
CREATE TABLE Adoptions (AdoptionId INTEGER PRIMARY KEY, DogId INTEGER REFERENCES Dogs(DogId), AdopterId INTEGER REFERENCES Adopters(AdopterId), AdoptedOn DATE, Fee REAL);
CREATE TABLE VetChecks (CheckId INTEGER PRIMARY KEY, DogId INTEGER REFERENCES Dogs(DogId), CheckedOn DATE, WeightKg REAL, Healthy INTEGER);
INSERT INTO Shelters VALUES (1, 'Paws Haven', 'Lyon', 40), (2, 'Second Chance', 'Grenoble', 25);
INSERT INTO Dogs VALUES (1, 'Biscuit', 'beagle', 3, 1, '2023-10-02', 1), (2, 'Nala', 'labrador', 1.5, 1, '2023-11-15', 0), (3, 'Rex', 'german shepherd', 7, 2, '2023-08-20', 1), (4, 'Mochi', 'shiba inu', 2, 2, '2024-01-05', 1), (5, 'Pepper', 'mixed', 9, 1, '2023-06-30', 1), (6, 'Bolt', 'greyhound', 4, 2, '2023-12-12', 0), (7, 'Daisy', 'labrador', 6, 1, '2024-02-01', 1);
INSERT INTO Adopters VALUES (1, 'Claire Moreau', 1, 'Lyon'), (2, 'Yusuf Demir', 0, 'Grenoble'), (3, 'Emma Roux', 1, 'Annecy');
INSERT INTO Adoptions VALUES (1, 1, 1, '2023-12-01', 150), (2, 3, 2, '2024-01-10', 90), (3, 5, 3, '2024-02-14', 60), (4, 2, 3, '2024-02-20', 180);
INSERT INTO VetChecks VALUES (1, 1, '2023-10-03', 11.2, 1), (2, 2, '2023-11-16', 18.5, 0), (3, 3, '2023-08-21', 34.0, 1), (4, 4, '2024-01-06', 9.1, 1), (5, 5, '2023-07-01', 15.0, 1), (6, 6, '2023-12-13', 27.5, 0), (7, 2, '2024-01-20', 21.0, 1), (8, 7, '2024-02-02', 29.8, 1);
