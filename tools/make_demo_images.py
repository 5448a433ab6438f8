"""Write the digits as image files in class folders and PaddleClas lists: python tools/make_demo_images.py --out DIR."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("demo_images")
