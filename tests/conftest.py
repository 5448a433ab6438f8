"""Test setup: the CPU environment is configured before paddle loads, as the tools do; the
longest files are collected first, so that under ``-n 2 --dist loadfile`` (README's command)
they start at once instead of ending the run alone."""
from rdrop_paddle.cpu import configure

configure("cpu")

LONGEST_FIRST = ("test_tipc.py", "test_paddle26.py", "test_multinode.py", "test_tampered.py", "test_training.py",
                 "test_alignment.py", "test_own_images.py", "test_text_training.py", "test_pickle_fuzz.py",
                 "test_faults.py", "test_recipe.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise
