"""Read the digit in image files from the command line, with the course's CNN (the command of Chapter 9).

    python -m helpers.predict my_seven.jpg                  # a phone photo of one digit on paper
    python -m helpers.predict photos/                       # a folder: every image in it, subfolders too
    python -m helpers.predict photos/ --sheet sheet.png     # also a contact sheet of what the model saw
    python -m helpers.predict a.png --model my_cnn.pt       # your own course CNN, saved as a state_dict

It prints one line per file, in four columns:
  file       the file's name (with its folder's name when you gave a folder)
  digit      the digit the model reads
  prob.      the model's probability for that digit
  runner-up  the second most likely digit and its probability
or, in place of the last three, why the file could not be used (damaged or truncated, not an image, no ink
found, ...). Files in a folder that are no images, and folders without images, get a line with their reason too.
The files are read, never changed: each goes through Chapter 9's preprocessing (helpers.saved.ch09) to MNIST's
28x28 format. --sheet writes those 28x28 images, titled with the answers, to a PNG (or PDF, SVG, JPEG); it will
not write over an input file or into an input folder, and it creates the folder it goes into.

Exit status: 0 if every file was read; 2 otherwise (a file or folder could not be used, the model could not be
loaded, the sheet could not be written, or the command line was wrong).

The model: `cnn` (the default) is Chapter 8's CNN (99.7% on MNIST's test set), cached in data/models/ (or
$COURSE_DATA_DIR/models/). If it is not cached yet, the first run says so and trains it once, with progress bars:
a few minutes on a laptop CPU (the estimate uses the last training on this machine when there was one); later
runs load it in a second. A PATH to a .pt file loads a course CNN saved with torch.save(model.state_dict(), PATH),
e.g. Chapter 9's fine-tuned model (merge LoRA adapters first: merge_lora); a .json record of the same name, as the
course's cache writes, gives its width, dropout and BatchNorm and its checksum. The course's other cached models
(Chapter 7's CNN that saw only the digits 0-4, Chapter 8's ablation variants) have no fixed name: their file
names hash their settings, and the digits-0-4 model cannot read 5-9. Pass one of their .pt files as a PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from . import custom
from .core import atomic_file, data_dir
from .custom import Prediction
from .data import MNISTError

MODELS = {"cnn": "Chapter 8's CNN (helpers.recipes.pretrained_cnn)"}


class ModelProblem(ValueError):
    """A model file that cannot be loaded; the message names the file, the reason and the fix."""


# ---------------------------------------------------------------- the model


def course_cnn() -> tuple[Any, dict]:
    """Chapter 8's CNN and its record; trains it once (saying so, with an estimate and progress) if not cached."""
    from . import recipes

    first_run = recipes.pretrained_record() is None  # pretrained_cnn then says it trains, and how long
    with contextlib.redirect_stdout(sys.stderr):  # stdout keeps only the table; progress goes to stderr
        model, record = recipes.pretrained_cnn(progress=True)
    if first_run:
        print(f"trained in {record.get('train_seconds', 0):.0f} s and cached in {data_dir() / 'models'}",
              file=sys.stderr)
    return model, record


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def saved_cnn(path: Path) -> tuple[Any, dict]:
    """A course CNN from a state_dict file, shaped and checked by its .json record when there is one."""
    import torch

    from .torch_models import CourseCNN

    record_path = path.with_suffix(".json")
    try:
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        recipe = record.get("key", record).get("recipe", {})  # the cache's record, or an older flat one
        model = CourseCNN(recipe.get("width", 16), recipe.get("dropout", 0.1), recipe.get("batchnorm", True))
    except (ValueError, AttributeError, TypeError) as err:
        raise ModelProblem(f"{record_path.name}: not a record of a course model ({err}); move it away or fix "
                           "it") from None
    if "sha256" in record and record["sha256"] != _sha256(path):
        raise ModelProblem(f"{path.name}: its checksum differs from {record_path.name}'s: the file is damaged or was "
                           "replaced; save the model again")
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:  # not a checkpoint, a whole pickled model, another network, LoRA adapters unmerged
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise ModelProblem(f"{path.name}: not the weights of a course CNN ({type(err).__name__}: {reason}); save them "
                           "with torch.save(model.state_dict(), path), after merge_lora for a LoRA model") from None
    return model.eval(), record


def load_model(choice: str | Path) -> tuple[Any, dict]:
    """The model named on the command line: a course model's name (MODELS) or a .pt file."""
    return course_cnn() if choice == "cnn" else saved_cnn(Path(choice))


def model_argument(value: str) -> str | Path:
    """argparse type of --model: a name in MODELS or an existing .pt file."""
    if value in MODELS:
        return value
    path = Path(value)
    if path.suffix == ".pt" and path.is_file():
        return path
    raise argparse.ArgumentTypeError(f"{value!r} is neither a course model ({', '.join(MODELS)}) nor an existing "
                                     ".pt file")


# ---------------------------------------------------------------- the table and the contact sheet


def skipped_row(item: str) -> Prediction:
    """A table row for an item predict_files skips, given as 'name: reason' (the reason holds no ': ')."""
    name, _, reason = item.rpartition(": ")
    return Prediction(name or item, problem=reason or item)


def check_sheet(sheet: Path, inputs: list[Path]) -> None:
    """Refuse a contact sheet that would replace an input file, land in an input folder or has an unknown type."""
    from matplotlib.backend_bases import FigureCanvasBase

    kind = sheet.suffix.lower().removeprefix(".")
    if kind not in FigureCanvasBase.get_supported_filetypes():
        raise ValueError(f"--sheet {sheet}: {sheet.suffix or 'no extension'} is no image type matplotlib writes; "
                         "end the name in .png, .pdf, .svg or .jpg")
    if sheet.is_dir():
        raise ValueError(f"--sheet {sheet}: that is a folder; give a file name, e.g. {sheet / 'sheet.png'}")
    target = sheet.resolve()
    for item in inputs:
        item = item.resolve()
        if target == item or (item.is_dir() and target.is_relative_to(item)):
            raise ValueError(f"--sheet {sheet}: refusing to write over an input file or into an input folder "
                             f"({item.name}); put the sheet somewhere else")


def save_sheet(figure: Any, sheet: Path) -> None:
    """Write the figure to `sheet` atomically (a half-written file never appears), creating its folder."""
    import matplotlib.pyplot as plt

    with atomic_file(sheet) as out:
        figure.savefig(out, format=sheet.suffix.lower().removeprefix("."), dpi=150, bbox_inches="tight")
    plt.close(figure)


# ---------------------------------------------------------------- the command


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m helpers.predict`; its help is this module's docstring."""
    parse = argparse.ArgumentParser(prog="python -m helpers.predict", description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files and folders to read")
    parse.add_argument("--sheet", type=Path, metavar="OUT", help="also write a contact sheet, e.g. out.png")
    parse.add_argument("--model", type=model_argument, default="cnn", metavar="MODEL",
                       help=f"{' | '.join(MODELS)} | PATH.pt (default: cnn, {MODELS['cnn']})")
    return parse


def main(argv: list[str] | None = None) -> int:
    """Run the command: print the table (stdout), messages (stderr); return the exit status (0 or 2)."""
    args = parser().parse_args(argv)
    try:
        if args.sheet is not None:
            check_sheet(args.sheet, args.paths)
        found, skipped = custom.input_files(args.paths)  # the files predict_files will read, and what it skips
        model = load_model(args.model)[0] if found else None  # nothing to read: no model, no training
    except (ValueError, OSError, MNISTError) as err:  # ModelProblem is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    predictions, figure = custom.predict_files(model, args.paths, figure=args.sheet is not None, warn=False)
    rows = predictions + [skipped_row(item) for item in skipped]
    print(custom.prediction_table(rows))
    bad = sum(row.problem is not None for row in rows)
    print(f"{len(rows) - bad} of {len(rows)} read" + (f"; {bad} could not be used (see above)" if bad else ""))
    if args.sheet is not None and figure is None:
        print("no contact sheet: no file could be read", file=sys.stderr)
    elif args.sheet is not None:
        try:
            save_sheet(figure, args.sheet)
        except OSError as err:
            print(f"error: --sheet {args.sheet}: {err}", file=sys.stderr)
            return 2
        print(f"contact sheet: {args.sheet}")
    return 2 if bad or not rows else 0


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")  # a command line shows no windows; the sheet is written to a file
    raise SystemExit(main())
