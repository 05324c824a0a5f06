"""``python -m edgekit ...``: the same CLI as the ``edgekit`` command (for a venv whose bin/ is not on PATH).

Example:
    $ python -m edgekit inspect digits-int8.tflite
"""

if __name__ == "__main__":
    from .cli import entry

    entry()
