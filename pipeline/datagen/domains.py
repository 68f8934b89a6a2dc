"""The business domains of the bundled dataset: each is three related tables described compactly.

Every domain has a *group* table (departments, stores, ...), an *entity* table that belongs to a group
(doctors, products, ...) and an *event* table that belongs to an entity (appointments, sales, ...).
Each table has a category column, and entity/event tables a numeric and a date column, so every SQL
template (pipeline/datagen/templates.py) can be phrased in every domain.
"""
from __future__ import annotations

from dataclasses import dataclass

PEOPLE = [
    "Alice Chen", "Bruno Costa", "Carmen Diaz", "Dmitri Orlov", "Emeka Obi", "Fatima Khan", "Grace Kim",
    "Hiro Tanaka", "Ines Moreau", "Jamal Reed", "Kofi Mensah", "Lena Fischer", "Mateo Rossi", "Nadia Petrova",
    "Omar Haddad", "Priya Nair", "Quinn Walsh", "Rosa Silva", "Sven Larsen", "Tara Singh", "Umar Farouk",
    "Vera Novak", "Wei Zhang", "Yara Haddad", "Zoe Martin",
]


@dataclass(frozen=True)
class Table:
    name: str            # SQL table name
    noun: str            # singular noun used in questions
    plural: str          # plural noun
    labels: list[str]    # values of the label column (names); people by default
    label_col: str = "name"
    cat_col: str = ""    # categorical column
    cats: tuple[str, ...] = ()
    num_col: str = ""    # numeric column (entity / event tables)
    num_range: tuple[float, float] = (0, 0)
    num_int: bool = False
    num_word: str = ""   # how questions name the numeric column ("salary")
    date_col: str = ""   # date column (entity / event tables)
    date_word: str = ""  # "hire date"


@dataclass(frozen=True)
class Domain:
    key: str
    description: str
    group: Table
    entity: Table
    event: Table

    @property
    def fk_entity(self) -> str:   # entity -> group
        return f"{self.group.noun.replace(' ', '_')}_id"

    @property
    def fk_event(self) -> str:    # event -> entity
        return f"{self.entity.noun.replace(' ', '_')}_id"


def G(name, noun, plural, labels, cat_col, cats):
    return Table(name, noun, plural, labels, cat_col=cat_col, cats=tuple(cats))


def E(name, noun, plural, labels, cat_col, cats, num_col, lo, hi, is_int, num_word, date_col, date_word, label_col="name"):
    return Table(name, noun, plural, labels, label_col, cat_col, tuple(cats), num_col, (lo, hi), is_int, num_word,
                 date_col, date_word)


def V(name, noun, plural, cat_col, cats, num_col, lo, hi, is_int, num_word, date_col, date_word):
    return Table(name, noun, plural, [], "", cat_col, tuple(cats), num_col, (lo, hi), is_int, num_word, date_col,
                 date_word)


DOMAINS: list[Domain] = [
    Domain("healthcare", "Hospital departments, their doctors and patient appointments.",
           G("departments", "department", "departments", ["Cardiology", "Oncology", "Pediatrics", "Neurology", "Radiology", "Orthopedics"], "wing", ["North", "South", "East", "West"]),
           E("doctors", "doctor", "doctors", PEOPLE, "specialty", ["surgeon", "internist", "resident", "consultant"], "salary", 90000, 320000, True, "salary", "hire_date", "hire date"),
           V("appointments", "appointment", "appointments", "status", ["completed", "cancelled", "no-show"], "fee", 40, 650, False, "fee", "appointment_date", "appointment date")),
    Domain("retail", "Stores, the products they stock and product sales.",
           G("stores", "store", "stores", ["Downtown", "Riverside", "Airport", "Mall Central", "Harbor", "Uptown"], "region", ["North", "South", "Central"]),
           E("products", "product", "products", ["Desk Lamp", "Coffee Mug", "Yoga Mat", "Backpack", "Water Bottle", "Notebook", "Headphones", "Umbrella", "Sunglasses", "Wall Clock"], "category", ["home", "sports", "electronics", "office"], "price", 3, 400, False, "price", "launch_date", "launch date"),
           V("sales", "sale", "sales", "channel", ["online", "in-store", "phone"], "revenue", 5, 2500, False, "revenue", "sale_date", "sale date")),
    Domain("education", "Schools, their teachers and the courses they teach.",
           G("schools", "school", "schools", ["Lincoln High", "Maple Academy", "Oak Ridge", "Cedar Park", "Summit Prep", "Lakeside"], "district", ["District 1", "District 2", "District 3"]),
           E("teachers", "teacher", "teachers", PEOPLE, "subject", ["math", "science", "history", "english", "art"], "years_experience", 1, 40, True, "years of experience", "hire_date", "hire date"),
           V("courses", "course", "courses", "level", ["beginner", "intermediate", "advanced"], "enrollment", 5, 120, True, "enrollment", "start_date", "start date")),
    Domain("banking", "Bank branches, customers and their transactions.",
           G("branches", "branch", "branches", ["Main Street", "Westgate", "Harborview", "Old Town", "Parkside", "Eastfield"], "city", ["Boston", "Denver", "Austin", "Seattle"]),
           E("customers", "customer", "customers", PEOPLE, "segment", ["retail", "premium", "business"], "credit_score", 300, 850, True, "credit score", "joined_date", "join date"),
           V("transactions", "transaction", "transactions", "type", ["deposit", "withdrawal", "transfer"], "amount", 10, 9000, False, "amount", "transaction_date", "transaction date")),
    Domain("logistics", "Warehouses, shipments and shipment tracking events.",
           G("warehouses", "warehouse", "warehouses", ["Hub A", "Hub B", "Coastal DC", "Inland DC", "Northern Depot", "Southern Depot"], "country", ["USA", "Canada", "Mexico"]),
           E("shipments", "shipment", "shipments", ["SHP-100", "SHP-101", "SHP-102", "SHP-103", "SHP-104", "SHP-105", "SHP-106", "SHP-107", "SHP-108"], "mode", ["air", "sea", "road", "rail"], "weight_kg", 1, 5000, False, "weight", "ship_date", "ship date", label_col="tracking_code"),
           V("tracking_events", "tracking event", "tracking events", "event_type", ["picked up", "in transit", "delivered", "delayed"], "delay_hours", 0, 96, True, "delay in hours", "event_date", "event date")),
    Domain("hospitality", "Hotels, their rooms and room bookings.",
           G("hotels", "hotel", "hotels", ["Grand Plaza", "Seaside Inn", "Mountain Lodge", "City Suites", "Garden Hotel", "Royal Court"], "rating_class", ["3-star", "4-star", "5-star"]),
           E("rooms", "room", "rooms", ["101", "102", "201", "202", "301", "302", "401", "402", "501"], "room_type", ["single", "double", "suite"], "nightly_rate", 60, 900, False, "nightly rate", "renovated_date", "renovation date", label_col="room_number"),
           V("bookings", "booking", "bookings", "booking_source", ["website", "agency", "walk-in"], "total_price", 60, 6000, False, "total price", "check_in_date", "check-in date")),
    Domain("aviation", "Airlines, their aircraft and flights.",
           G("airlines", "airline", "airlines", ["SkyJet", "AeroNova", "BlueWing", "Polar Air", "SunRoute", "Atlas Air"], "alliance", ["Star", "Oneworld", "SkyTeam"]),
           E("aircraft", "aircraft", "aircraft", ["N101AA", "N202BB", "N303CC", "N404DD", "N505EE", "N606FF", "N707GG", "N808HH"], "model", ["A320", "B737", "A350", "B787"], "seats", 120, 420, True, "seat count", "delivery_date", "delivery date", label_col="tail_number"),
           V("flights", "flight", "flights", "status", ["on time", "delayed", "cancelled"], "passengers", 20, 400, True, "passenger count", "flight_date", "flight date")),
    Domain("real_estate", "Real-estate agencies, property listings and offers.",
           G("agencies", "agency", "agencies", ["HomeFirst", "Keystone Realty", "Urban Nest", "Coastal Homes", "Prime Estates", "Blue Door"], "city", ["Miami", "Chicago", "Phoenix", "Portland"]),
           E("listings", "listing", "listings", ["12 Elm St", "45 Oak Ave", "7 Pine Rd", "88 Birch Ln", "3 Cedar Ct", "19 Maple Dr", "56 Ash Way", "210 Spruce Blvd"], "property_type", ["condo", "house", "townhouse"], "asking_price", 120000, 2500000, True, "asking price", "listed_date", "listing date", label_col="address"),
           V("offers", "offer", "offers", "offer_status", ["pending", "accepted", "rejected"], "offer_amount", 100000, 2600000, True, "offer amount", "offer_date", "offer date")),
    Domain("manufacturing", "Factories, their machines and maintenance jobs.",
           G("factories", "factory", "factories", ["Plant Alpha", "Plant Beta", "Plant Gamma", "Plant Delta", "Plant Omega", "Plant Sigma"], "country", ["Germany", "Japan", "USA", "Brazil"]),
           E("machines", "machine", "machines", ["Press 1", "Lathe 2", "Welder 3", "Robot 4", "Mill 5", "Cutter 6", "Drill 7", "Molder 8"], "machine_type", ["cnc", "assembly", "packaging"], "capacity_units", 50, 5000, True, "capacity", "installed_date", "installation date"),
           V("maintenance_jobs", "maintenance job", "maintenance jobs", "job_type", ["preventive", "corrective", "inspection"], "cost", 100, 25000, False, "cost", "job_date", "job date")),
    Domain("agriculture", "Farms, their fields and harvests.",
           G("farms", "farm", "farms", ["Green Acres", "Sunny Fields", "River Bend", "Hilltop", "Willow Creek", "Prairie Rose"], "state", ["Iowa", "Kansas", "Nebraska", "Ohio"]),
           E("fields", "field", "fields", ["Field A", "Field B", "Field C", "Field D", "Field E", "Field F", "Field G", "Field H"], "crop", ["corn", "wheat", "soybean", "barley"], "area_hectares", 2, 400, False, "area", "planted_date", "planting date"),
           V("harvests", "harvest", "harvests", "quality_grade", ["A", "B", "C"], "yield_tons", 1, 900, False, "yield", "harvest_date", "harvest date")),
    Domain("energy", "Power companies, their plants and daily output readings.",
           G("energy_companies", "company", "companies", ["VoltCo", "SunGrid", "WindWorks", "HydroOne", "TerraPower", "BrightEnergy"], "country", ["Spain", "India", "USA", "Australia"]),
           E("power_plants", "power plant", "power plants", ["Plant North", "Plant South", "Solar Park 1", "Wind Farm 2", "Dam 3", "Solar Park 4", "Wind Farm 5", "Plant East"], "source", ["solar", "wind", "hydro", "gas"], "capacity_mw", 5, 2000, False, "capacity in MW", "commissioned_date", "commissioning date"),
           V("output_readings", "output reading", "output readings", "grid_status", ["normal", "curtailed", "peak"], "output_mwh", 1, 40000, False, "output in MWh", "reading_date", "reading date")),
    Domain("telecom", "Mobile carriers, subscribers and their data sessions.",
           G("carriers", "carrier", "carriers", ["TelNet", "AirWave", "Connectly", "MobiPlus", "SignalOne", "FiberLink"], "network_type", ["4G", "5G"]),
           E("subscribers", "subscriber", "subscribers", PEOPLE, "plan", ["prepaid", "postpaid", "family"], "monthly_fee", 10, 150, False, "monthly fee", "activation_date", "activation date"),
           V("data_sessions", "data session", "data sessions", "region", ["urban", "suburban", "rural"], "data_mb", 1, 20000, False, "data usage in MB", "session_date", "session date")),
    Domain("insurance", "Insurers, policies and claims.",
           G("insurers", "insurer", "insurers", ["SafeHarbor", "TrustLine", "Guardian Mutual", "Evergreen", "Shield Co", "NorthStar"], "rating", ["A", "A+", "B"]),
           E("policies", "policy", "policies", ["POL-1001", "POL-1002", "POL-1003", "POL-1004", "POL-1005", "POL-1006", "POL-1007", "POL-1008"], "policy_type", ["auto", "home", "life", "health"], "premium", 200, 9000, False, "premium", "start_date", "start date", label_col="policy_number"),
           V("claims", "claim", "claims", "claim_status", ["open", "approved", "denied"], "claim_amount", 100, 80000, False, "claim amount", "claim_date", "claim date")),
    Domain("sports", "Sports teams, players and match performances.",
           G("teams", "team", "teams", ["Falcons", "Tigers", "Sharks", "Wolves", "Eagles", "Bears"], "league", ["East", "West"]),
           E("players", "player", "players", PEOPLE, "position", ["guard", "forward", "center", "goalkeeper"], "salary", 50000, 9000000, True, "salary", "signed_date", "signing date"),
           V("performances", "performance", "performances", "result", ["win", "loss", "draw"], "points", 0, 60, True, "points scored", "match_date", "match date")),
    Domain("music_streaming", "Record labels, artists and song streams.",
           G("labels", "label", "labels", ["Blue Note Records", "Indie Wave", "Sonic Sound", "Golden Tone", "Echo Music", "Night Owl"], "country", ["USA", "UK", "Sweden", "Korea"]),
           E("artists", "artist", "artists", ["Luna Ray", "The Drifters", "Kai Storm", "Echo Valley", "Mira Jade", "Nova Lights", "Red Maple", "Sol Rivera"], "genre", ["pop", "rock", "jazz", "hip-hop"], "followers", 1000, 9000000, True, "follower count", "debut_date", "debut date"),
           V("streams", "stream", "streams", "platform", ["mobile", "desktop", "smart speaker"], "minutes_played", 1, 5000, False, "minutes played", "stream_date", "stream date")),
    Domain("film", "Film studios, movies and box-office screenings.",
           G("studios", "studio", "studios", ["Silver Screen", "Pinewood Pictures", "Lumen Films", "Starlight", "Redwood Studio", "Aurora Films"], "country", ["USA", "France", "India", "Japan"]),
           E("movies", "movie", "movies", ["Midnight Run", "Ocean Deep", "Lost Cities", "Iron Dawn", "Quiet Hills", "Neon Rain", "Star Path", "Paper Moon"], "genre", ["drama", "comedy", "action", "sci-fi"], "budget_musd", 1, 300, False, "budget in million USD", "release_date", "release date", label_col="title"),
           V("screenings", "screening", "screenings", "format", ["2D", "3D", "IMAX"], "ticket_revenue", 100, 90000, False, "ticket revenue", "screening_date", "screening date")),
    Domain("publishing", "Publishers, books and book orders.",
           G("publishers", "publisher", "publishers", ["Penwood", "Inkwell Press", "Lighthouse Books", "Folio House", "Bright Page", "Harbor Press"], "country", ["UK", "USA", "Canada"]),
           E("books", "book", "books", ["The Silent Sea", "Code of Stars", "Winter Garden", "Atlas of Dreams", "River Song", "Glass Tower", "Hidden Paths", "Last Light"], "genre", ["fiction", "mystery", "science", "history"], "page_count", 80, 1200, True, "page count", "published_date", "publication date", label_col="title"),
           V("book_orders", "order", "orders", "order_channel", ["bookstore", "online", "library"], "copies", 1, 500, True, "number of copies", "order_date", "order date")),
    Domain("ecommerce", "Online sellers, listings and customer orders.",
           G("sellers", "seller", "sellers", ["GadgetHub", "HomeGoods Co", "StyleBox", "PetWorld", "BookNook", "FitGear"], "tier", ["bronze", "silver", "gold"]),
           E("items", "item", "items", ["Wireless Mouse", "Dog Bed", "Running Shoes", "Desk Chair", "Phone Case", "Tea Kettle", "Smart Watch", "Cookbook"], "category", ["electronics", "pets", "fashion", "kitchen"], "price", 5, 900, False, "price", "listed_date", "listing date", label_col="title"),
           V("orders", "order", "orders", "payment_method", ["card", "paypal", "gift card"], "order_total", 5, 3000, False, "order total", "order_date", "order date")),
    Domain("automotive", "Car dealerships, vehicles and service visits.",
           G("dealerships", "dealership", "dealerships", ["AutoCity", "Speedway Motors", "Prime Cars", "Metro Auto", "Sunset Motors", "Valley Ford"], "state", ["Texas", "Florida", "California"]),
           E("vehicles", "vehicle", "vehicles", ["VIN001", "VIN002", "VIN003", "VIN004", "VIN005", "VIN006", "VIN007", "VIN008", "VIN009"], "fuel_type", ["petrol", "diesel", "electric", "hybrid"], "mileage_km", 0, 250000, True, "mileage", "sold_date", "sale date", label_col="vin"),
           V("service_visits", "service visit", "service visits", "service_type", ["oil change", "tires", "inspection", "repair"], "invoice_amount", 30, 6000, False, "invoice amount", "visit_date", "visit date")),
    Domain("human_resources", "Departments, employees and payroll payments.",
           G("departments", "department", "departments", ["Engineering", "Sales", "Finance", "Marketing", "Legal", "Support"], "location", ["New York", "London", "Berlin", "Singapore"]),
           E("employees", "employee", "employees", PEOPLE, "job_level", ["junior", "mid", "senior", "lead"], "salary", 35000, 260000, True, "salary", "hire_date", "hire date"),
           V("payroll", "payment", "payments", "pay_type", ["regular", "bonus", "overtime"], "gross_amount", 200, 30000, False, "gross amount", "pay_date", "pay date")),
    Domain("nonprofit", "Charities, donors and donations.",
           G("charities", "charity", "charities", ["Clean Water Fund", "Hope Kitchen", "Green Earth", "Bright Futures", "Animal Haven", "Health Reach"], "cause", ["environment", "education", "health", "animals"]),
           E("donors", "donor", "donors", PEOPLE, "donor_type", ["individual", "corporate", "foundation"], "lifetime_giving", 10, 500000, False, "lifetime giving", "first_gift_date", "first gift date"),
           V("donations", "donation", "donations", "campaign", ["spring drive", "gala", "year-end"], "amount", 5, 50000, False, "amount", "donation_date", "donation date")),
    Domain("government", "City agencies, public services and service requests.",
           G("agencies", "agency", "agencies", ["Parks Dept", "Transit Authority", "Water Board", "Housing Office", "Health Office", "Roads Dept"], "city", ["Springfield", "Riverton", "Lakeview"]),
           E("services", "service", "services", ["Pothole Repair", "Tree Trimming", "Bus Shelter", "Permit Desk", "Water Testing", "Graffiti Removal", "Street Lights", "Recycling"], "service_area", ["north", "south", "central"], "annual_budget", 10000, 5000000, True, "annual budget", "launched_date", "launch date"),
           V("service_requests", "request", "requests", "priority", ["low", "medium", "high"], "resolution_days", 1, 120, True, "days to resolve", "request_date", "request date")),
    Domain("construction", "Contractors, projects and inspections.",
           G("contractors", "contractor", "contractors", ["BuildRight", "SteelFrame", "StoneWorks", "UrbanBuild", "CoreCon", "Apex Builders"], "license_class", ["A", "B", "C"]),
           E("projects", "project", "projects", ["City Library", "Bridge 7", "Harbor Tower", "School Annex", "Metro Depot", "Sports Arena", "Clinic Wing", "Parking Deck"], "project_type", ["residential", "commercial", "infrastructure"], "budget", 100000, 90000000, True, "budget", "start_date", "start date"),
           V("inspections", "inspection", "inspections", "outcome", ["passed", "failed", "conditional"], "violations", 0, 30, True, "violation count", "inspection_date", "inspection date")),
    Domain("pharma", "Sponsors, clinical trials and trial sites' enrollments.",
           G("sponsors", "sponsor", "sponsors", ["Novagen", "Curex", "BioStar", "Medilux", "Helix Labs", "Pharmacore"], "country", ["Switzerland", "USA", "Germany", "Japan"]),
           E("trials", "trial", "trials", ["TRIAL-A1", "TRIAL-B2", "TRIAL-C3", "TRIAL-D4", "TRIAL-E5", "TRIAL-F6", "TRIAL-G7", "TRIAL-H8"], "phase", ["phase 1", "phase 2", "phase 3"], "target_enrollment", 20, 5000, True, "target enrollment", "start_date", "start date", label_col="trial_code"),
           V("enrollments", "enrollment", "enrollments", "arm", ["placebo", "treatment"], "patients", 1, 800, True, "patient count", "enrollment_date", "enrollment date")),
    Domain("cybersecurity", "Business units, servers and security incidents.",
           G("business_units", "business unit", "business units", ["Finance IT", "Retail Ops", "Cloud Platform", "HR Systems", "R&D Lab", "Customer Web"], "region", ["EMEA", "APAC", "AMER"]),
           E("servers", "server", "servers", ["srv-web-01", "srv-db-02", "srv-app-03", "srv-mail-04", "srv-vpn-05", "srv-log-06", "srv-ci-07", "srv-dns-08"], "os", ["linux", "windows", "bsd"], "cpu_cores", 2, 128, True, "number of CPU cores", "deployed_date", "deployment date", label_col="hostname"),
           V("incidents", "incident", "incidents", "severity", ["low", "medium", "high", "critical"], "downtime_minutes", 0, 2000, True, "downtime in minutes", "detected_date", "detection date")),
    Domain("gaming", "Game studios, games and player sessions.",
           G("game_studios", "studio", "studios", ["PixelForge", "Dragon Byte", "Moonlit Games", "Arcadia", "Quantum Play", "Red Fox"], "country", ["USA", "Poland", "Japan", "Canada"]),
           E("games", "game", "games", ["Star Raiders", "Farm Tales", "Dungeon Deep", "Speed Kings", "Puzzle Pop", "Sky Castles", "Zombie Rush", "Ocean Quest"], "genre", ["rpg", "racing", "puzzle", "shooter"], "price", 0, 70, False, "price", "release_date", "release date", label_col="title"),
           V("play_sessions", "session", "sessions", "platform", ["pc", "console", "mobile"], "minutes_played", 1, 600, True, "minutes played", "session_date", "session date")),
    Domain("restaurants", "Restaurants, menu items and orders.",
           G("restaurants", "restaurant", "restaurants", ["Bella Italia", "Sakura", "El Toro", "The Green Fork", "Spice Route", "Harbor Grill"], "cuisine", ["italian", "japanese", "mexican", "indian"]),
           E("menu_items", "menu item", "menu items", ["Margherita", "Ramen Bowl", "Tacos", "Caesar Salad", "Curry", "Burger", "Sushi Set", "Pad Thai"], "course", ["starter", "main", "dessert"], "price", 4, 60, False, "price", "added_date", "date added", label_col="dish"),
           V("food_orders", "order", "orders", "order_type", ["dine-in", "takeaway", "delivery"], "quantity", 1, 40, True, "quantity", "order_date", "order date")),
    Domain("fitness", "Gyms, members and workouts.",
           G("gyms", "gym", "gyms", ["IronWorks", "FlexZone", "PulseFit", "CoreLab", "Peak Gym", "UrbanSweat"], "city", ["Austin", "Dallas", "Houston"]),
           E("members", "member", "members", PEOPLE, "membership", ["basic", "plus", "premium"], "monthly_fee", 15, 120, False, "monthly fee", "joined_date", "join date"),
           V("workouts", "workout", "workouts", "activity", ["running", "cycling", "yoga", "weights"], "calories", 50, 1500, True, "calories burned", "workout_date", "workout date")),
    Domain("tourism", "Tour operators, tours and tour reviews.",
           G("tour_operators", "operator", "operators", ["WanderWide", "TrailBlazers", "SeaBreeze Tours", "Alpine Trek", "Safari Co", "City Walks"], "country", ["Kenya", "Peru", "Italy", "Nepal"]),
           E("tours", "tour", "tours", ["Old Town Walk", "Volcano Hike", "Wine Trail", "Glacier Trek", "Desert Safari", "River Cruise", "Jungle Trip", "Castle Tour"], "tour_type", ["cultural", "adventure", "eco"], "price", 20, 4000, False, "price", "launch_date", "launch date", label_col="title"),
           V("reviews", "review", "reviews", "traveler_type", ["solo", "couple", "family"], "rating", 1, 5, True, "rating", "review_date", "review date")),
    Domain("environment", "Monitoring networks, stations and air-quality readings.",
           G("networks", "network", "networks", ["CleanAir NW", "Metro Watch", "Coastal Net", "Valley Sensors", "Urban Breath", "Green Grid"], "operator_type", ["public", "academic", "private"]),
           E("stations", "station", "stations", ["ST-01", "ST-02", "ST-03", "ST-04", "ST-05", "ST-06", "ST-07", "ST-08"], "site_type", ["urban", "rural", "industrial"], "elevation_m", 0, 3000, True, "elevation", "installed_date", "installation date", label_col="station_code"),
           V("air_readings", "reading", "readings", "pollutant", ["pm25", "no2", "o3"], "concentration", 1, 300, False, "concentration", "reading_date", "reading date")),
    Domain("space", "Space agencies, missions and launches.",
           G("space_agencies", "agency", "agencies", ["NASA", "ESA", "JAXA", "ISRO", "CSA", "CNSA"], "continent", ["America", "Europe", "Asia"]),
           E("missions", "mission", "missions", ["Artemis", "Juno", "Hayabusa", "Chandrayaan", "Rosetta", "Tianwen", "Cassini", "Voyager"], "target", ["moon", "mars", "asteroid", "jupiter"], "budget_musd", 50, 9000, False, "budget in million USD", "approval_date", "approval date"),
           V("launches", "launch", "launches", "outcome", ["success", "partial", "failure"], "payload_kg", 100, 25000, True, "payload mass", "launch_date", "launch date")),
    Domain("fashion", "Fashion brands, garments and garment returns.",
           G("brands", "brand", "brands", ["Verde", "Noir Atelier", "Coastline", "Urban Thread", "Maison Lys", "Kite"], "segment", ["luxury", "mid-market", "budget"]),
           E("garments", "garment", "garments", ["Linen Shirt", "Wool Coat", "Denim Jacket", "Silk Scarf", "Cargo Pants", "Knit Sweater", "Summer Dress", "Rain Parka"], "material", ["cotton", "wool", "polyester", "silk"], "unit_price", 8, 900, False, "unit price", "season_start", "season start date"),
           V("returns", "return", "returns", "reason", ["size", "defect", "changed mind"], "refund_amount", 5, 900, False, "refund amount", "return_date", "return date")),
    Domain("social_media", "Communities, user accounts and posts.",
           G("communities", "community", "communities", ["Photography", "Gardening", "Cooking", "Startups", "Running", "Books"], "visibility", ["public", "private"]),
           E("accounts", "account", "accounts", ["@sunny", "@pixelpete", "@greenthumb", "@chefkim", "@runfast", "@bookworm", "@techguru", "@wanderer"], "account_type", ["personal", "creator", "business"], "followers", 10, 2000000, True, "follower count", "created_date", "creation date", label_col="handle"),
           V("posts", "post", "posts", "media_type", ["text", "image", "video"], "likes", 0, 90000, True, "like count", "posted_date", "post date")),
    Domain("fisheries", "Fishing ports, vessels and catches.",
           G("ports", "port", "ports", ["Port Haven", "Bay City", "North Cove", "Gull Harbor", "Saltwick", "Reef Point"], "sea", ["North Sea", "Baltic", "Atlantic"]),
           E("vessels", "vessel", "vessels", ["Sea Spirit", "Northern Star", "Blue Marlin", "Wave Runner", "Ocean Pearl", "Storm Petrel", "Silver Fin", "Tidewater"], "vessel_type", ["trawler", "longliner", "seiner"], "length_m", 8, 90, False, "length", "registered_date", "registration date"),
           V("catches", "catch", "catches", "species", ["cod", "herring", "mackerel", "tuna"], "weight_tons", 0.5, 300, False, "catch weight", "catch_date", "catch date")),
    Domain("legal", "Law firms, cases and billed hours.",
           G("law_firms", "law firm", "law firms", ["Baker & Lowe", "Stone Partners", "Grant Legal", "Miller Hart", "Ortega LLP", "Quill & Co"], "city", ["New York", "Chicago", "Atlanta"]),
           E("cases", "case", "cases", ["CASE-201", "CASE-202", "CASE-203", "CASE-204", "CASE-205", "CASE-206", "CASE-207", "CASE-208"], "practice_area", ["corporate", "criminal", "family", "ip"], "claim_value", 1000, 9000000, True, "claim value", "opened_date", "opening date", label_col="case_number"),
           V("billing_entries", "billing entry", "billing entries", "activity", ["research", "court", "drafting"], "hours", 0.5, 40, False, "hours billed", "entry_date", "entry date")),
]
