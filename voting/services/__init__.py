"""Services own the rules and the commits; views and the CLI call them."""
