"""Retrieval for vector stores: parsing, chunking, embedding, indexing and search."""
