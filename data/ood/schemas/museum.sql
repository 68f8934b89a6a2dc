-- A museum's collection, galleries and exhibitions (PascalCase).
CREATE TABLE Artists (ArtistId INTEGER PRIMARY KEY, FullName TEXT, Nationality TEXT, BirthYear INTEGER, DeathYear INTEGER);
CREATE TABLE Galleries (GalleryId INTEGER PRIMARY KEY, GalleryName TEXT, Floor INTEGER, Wing TEXT);
CREATE TABLE Artworks (ArtworkId INTEGER PRIMARY KEY, Title TEXT, ArtistId INTEGER REFERENCES Artists(ArtistId), YearCreated INTEGER, Medium TEXT, InsuredValue REAL, GalleryId INTEGER REFERENCES Galleries(GalleryId));
CREATE TABLE Exhibitions (ExhibitionId INTEGER PRIMARY KEY, ExhibitionTitle TEXT, OpensOn DATE, ClosesOn DATE, Curator TEXT);
CREATE TABLE ExhibitionItems (ExhibitionId INTEGER REFERENCES Exhibitions(ExhibitionId), ArtworkId INTEGER REFERENCES Artworks(ArtworkId), PRIMARY KEY (ExhibitionId, ArtworkId));
INSERT INTO Artists VALUES (1, 'Clara Voss', 'German', 1881, 1950), (2, 'Tomas Ferreira', 'Portuguese', 1902, 1977), (3, 'Aiko Mori', 'Japanese', 1948, NULL), (4, 'Henri Lacroix', 'French', 1860, 1921), (5, 'Nora Quist', 'Danish', 1975, NULL);
INSERT INTO Galleries VALUES (1, 'Blue Hall', 1, 'East'), (2, 'Modern Rooms', 2, 'West'), (3, 'Print Cabinet', 2, 'East'), (4, 'Garden Pavilion', 0, 'South');
INSERT INTO Artworks VALUES (1, 'Harbor at Dawn', 4, 1895, 'oil', 1200000, 1), (2, 'Red Study', 1, 1923, 'oil', 850000, 1), (3, 'Quiet Lines', 3, 1979, 'ink', 120000, 3), (4, 'City Noise', 2, 1931, 'oil', 640000, 2), (5, 'Paper Cranes', 3, 1985, 'woodblock', 95000, 3), (6, 'Winter Field', 4, 1902, 'oil', 990000, 1), (7, 'North Light', 5, 2010, 'photograph', 45000, 2), (8, 'Portrait of M.', 1, 1930, 'charcoal', 210000, NULL), (9, 'Salt Flats', 5, 2016, 'photograph', 38000, 4), (10, 'Tide Machine', 2, 1940, 'bronze', 720000, 4);
INSERT INTO Exhibitions VALUES (1, 'Light and Water', '2023-03-01', '2023-06-30', 'R. Okafor'), (2, 'Lines of the East', '2023-07-15', '2023-10-01', 'S. Lindqvist'), (3, 'Twentieth Century Voices', '2024-01-10', '2024-05-20', 'R. Okafor');
INSERT INTO ExhibitionItems VALUES (1, 1), (1, 6), (1, 7), (1, 9), (2, 3), (2, 5), (3, 2), (3, 4), (3, 8), (3, 10), (3, 7);
