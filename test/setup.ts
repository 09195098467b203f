// Preloaded by bun test (bunfig.toml): keep logs quiet and colourless so assertions read plain text.
process.env.NO_COLOR = "1";
process.env.CONSOLA_LEVEL ??= "1";
