"""Commerce: carts, orders, payments (customer → business) and payment providers."""
