"""Network parts that methods assemble: MLP heads, convolutional decoders, feature queues,
momentum (EMA) copies, prototypes and position embeddings."""
