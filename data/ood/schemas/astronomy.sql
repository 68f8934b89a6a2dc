-- Observatories, telescopes and observation logs (abbreviated snake_case).
CREATE TABLE obs_sites (site_id INTEGER PRIMARY KEY, site_nm TEXT, country TEXT, elev_m INTEGER);
CREATE TABLE telescopes (tel_id INTEGER PRIMARY KEY, tel_nm TEXT, site_id INTEGER REFERENCES obs_sites(site_id), aperture_cm REAL, first_light_yr INTEGER);
CREATE TABLE astronomers (astr_id INTEGER PRIMARY KEY, astr_nm TEXT, institution TEXT, career_start_yr INTEGER);
CREATE TABLE celestial_objs (obj_id INTEGER PRIMARY KEY, catalog_nm TEXT, obj_type TEXT, constellation TEXT, magnitude REAL);
CREATE TABLE observations (obs_id INTEGER PRIMARY KEY, tel_id INTEGER REFERENCES telescopes(tel_id), astr_id INTEGER REFERENCES astronomers(astr_id), obj_id INTEGER REFERENCES celestial_objs(obj_id), obs_dt DATE, exposure_s REAL, seeing_arcsec REAL);
INSERT INTO obs_sites VALUES (1, 'Cerro Alto', 'Chile', 2400), (2, 'Mauna Ridge', 'USA', 4200), (3, 'La Palma Crest', 'Spain', 2350);
INSERT INTO telescopes VALUES (1, 'Condor 4m', 1, 400, 1998), (2, 'Summit 8m', 2, 820, 2005), (3, 'Isla 2m', 3, 200, 1987), (4, 'Condor Wide', 1, 120, 2016), (5, 'Summit Spec', 2, 350, 2012);
INSERT INTO astronomers VALUES (1, 'Dr. Amara Nwosu', 'Lagos Institute', 2008), (2, 'Dr. Felix Braun', 'Heidelberg Obs.', 1995), (3, 'Dr. Lucia Perez', 'Univ. of Chile', 2014), (4, 'Dr. Kenji Arai', 'Tokyo Tech', 2001);
INSERT INTO celestial_objs VALUES (1, 'M31', 'galaxy', 'Andromeda', 3.4), (2, 'M42', 'nebula', 'Orion', 4.0), (3, 'NGC 6397', 'globular cluster', 'Ara', 5.2), (4, 'Betelgeuse', 'star', 'Orion', 0.5), (5, 'M87', 'galaxy', 'Virgo', 8.6), (6, 'NGC 3372', 'nebula', 'Carina', 1.0), (7, 'Sirius', 'star', 'Canis Major', -1.46);
INSERT INTO observations VALUES (1, 1, 3, 3, '2023-05-02', 600, 0.8), (2, 2, 4, 1, '2023-05-03', 1200, 0.5), (3, 2, 2, 5, '2023-05-03', 1800, 0.6), (4, 3, 2, 4, '2023-05-10', 30, 1.1), (5, 1, 1, 6, '2023-06-01', 900, 0.7), (6, 4, 3, 6, '2023-06-01', 300, 0.9), (7, 5, 4, 2, '2023-06-15', 450, 0.6), (8, 3, 2, 2, '2023-07-20', 240, 1.3), (9, 2, 1, 1, '2023-08-08', 2400, 0.4), (10, 1, 3, 2, '2023-08-09', 500, 0.9), (11, 4, 1, 3, '2023-09-12', 700, 1.0), (12, 5, 4, 5, '2023-09-30', 1500, 0.5);
