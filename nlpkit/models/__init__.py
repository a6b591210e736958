"""Models: tokenizers (SentencePiece, Hugging Face), encoders, heads and word vectors."""
