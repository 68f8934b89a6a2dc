-- A recipe site: cuisines, recipes, ingredients, quantities and user ratings (PascalCase, 5 tables).
CREATE TABLE Cuisines (CuisineId INTEGER PRIMARY KEY, CuisineName TEXT, Region TEXT);
CREATE TABLE Recipes (RecipeId INTEGER PRIMARY KEY, RecipeName TEXT, CuisineId INTEGER REFERENCES Cuisines(CuisineId), PrepMinutes INTEGER, Servings INTEGER, IsVegetarian INTEGER);
CREATE TABLE Ingredients (IngredientId INTEGER PRIMARY KEY, IngredientName TEXT, KcalPer100g REAL, IsAllergen INTEGER);
CREATE TABLE RecipeIngredients (RecipeId INTEGER REFERENCES Recipes(RecipeId), IngredientId INTEGER REFERENCES Ingredients(IngredientId), Grams REAL, PRIMARY KEY (RecipeId, IngredientId));
CREATE TABLE Ratings (RatingId INTEGER PRIMARY KEY, RecipeId INTEGER REFERENCES Recipes(RecipeId), UserName TEXT, Stars INTEGER, RatedOn DATE);
INSERT INTO Cuisines VALUES (1, 'Thai', 'Asia'), (2, 'Mexican', 'Americas'), (3, 'Italian', 'Europe'), (4, 'Ethiopian', 'Africa');
INSERT INTO Recipes VALUES (1, 'Green Curry', 1, 40, 4, 0), (2, 'Som Tam', 1, 20, 2, 1), (3, 'Black Bean Tacos', 2, 25, 4, 1), (4, 'Chicken Mole', 2, 120, 6, 0), (5, 'Risotto Funghi', 3, 45, 4, 1), (6, 'Lasagne', 3, 90, 8, 0), (7, 'Misir Wot', 4, 50, 4, 1);
INSERT INTO Ingredients VALUES (1, 'chicken', 165, 0), (2, 'coconut milk', 230, 0), (3, 'peanuts', 567, 1), (4, 'black beans', 132, 0), (5, 'rice', 130, 0), (6, 'mushrooms', 22, 0), (7, 'wheat pasta', 131, 1), (8, 'red lentils', 116, 0), (9, 'cheese', 402, 1), (10, 'chili', 40, 0);
INSERT INTO RecipeIngredients VALUES (1, 1, 500), (1, 2, 400), (1, 10, 20), (2, 3, 50), (2, 10, 10), (3, 4, 400), (3, 10, 15), (4, 1, 900), (4, 10, 30), (4, 3, 60), (5, 5, 320), (5, 6, 250), (5, 9, 60), (6, 7, 500), (6, 9, 300), (7, 8, 400), (7, 10, 25);
INSERT INTO Ratings VALUES (1, 1, 'ana', 5, '2024-01-02'), (2, 1, 'joe', 4, '2024-01-05'), (3, 3, 'ana', 4, '2024-01-06'), (4, 4, 'kim', 5, '2024-01-09'), (5, 5, 'joe', 3, '2024-01-10'), (6, 6, 'kim', 4, '2024-01-12'), (7, 7, 'lu', 5, '2024-01-15'), (8, 3, 'lu', 2, '2024-01-16'), (9, 5, 'ana', 4, '2024-01-20');
