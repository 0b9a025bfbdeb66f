"""Jobs behind the il6rcc subcommands: simulate, fit, report, compare, predict, design."""
