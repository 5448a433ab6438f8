"""Text classification data: WordPiece tokenizer, file sources, the padded-batch data set."""
from rdrop_paddle.data.text.dataset import TextDataset, build_text_datasets
from rdrop_paddle.data.text.sources import SOURCES
from rdrop_paddle.data.text.tokenizer import Tokenizer

__all__ = ["SOURCES", "TextDataset", "Tokenizer", "build_text_datasets"]
