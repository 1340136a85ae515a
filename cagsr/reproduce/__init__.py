"""`cagsr reproduce`: every row of the paper's two tables, several seeds, one command."""
