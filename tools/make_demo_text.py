"""Write a generated review set (PaddleNLP folder) and a tiny Hugging Face BERT: python tools/make_demo_text.py --out DIR."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("demo_text")
