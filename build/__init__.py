"""The build step: training, compiling and packaging the function.

It imports the function's own modules (functions/predict) where it checks them, so the
exactness gate tests the very evaluator that ships.
"""

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = PROJECT_ROOT / "functions" / "predict"
if str(FUNCTION_DIR) not in sys.path:
    sys.path.append(str(FUNCTION_DIR))
