"""Small shared helpers: paths, seeding, run folders, logging."""
