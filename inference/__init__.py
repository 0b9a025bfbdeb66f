"""il6rcc."""
