"""What training data and serving both need about SQL: the prompt contract, statements, extraction,
validation and the sandbox. Imports only core/."""
