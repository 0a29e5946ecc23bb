"""An estimator fitted on a pandas DataFrame: compiled with its columns mapped to the spec's
order, or served by scikit-learn with a DataFrame (and pandas shipped only then)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from build import DEFAULT_SPEC, package
from build.bake import bake_model
from build.checks import json_row
from build.spec import load_spec
from build.train import check_rows
from local.lambda_runtime import LambdaContext
from serving.config import PACKAGE_MODEL_DIR
from tests.events import http_api_event, response_json
from tests.unit.conftest import imported_app

PENGUINS = DEFAULT_SPEC.parent / "data" / "penguins.csv"
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORIES = ["island", "sex"]


@pytest.fixture(scope="module")
def dataframe_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec for a Pipeline fitted on a DataFrame, its columns chosen by name in another order."""
    directory = tmp_path_factory.mktemp("dataframe-model")
    frame = pd.read_csv(PENGUINS, na_values=["NA"]).dropna(subset=["sex"])
    columns = [*CATEGORIES, *NUMBERS]
    pipeline: Pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
                        ("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORIES),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    ).fit(frame[columns], frame["species"])
    joblib.dump(pipeline, directory / "model.joblib")
    frame[[*columns, "species"]].iloc[::7].to_csv(directory / "rows.csv", index=False)
    features = [f'[[features]]\nname = "{name}"\nallow_missing = true\n' for name in NUMBERS]
    features[:0] = [
        '[[features]]\nname = "island"\ntype = "category"\ncategories = ["Biscoe", "Dream", "Torgersen"]\n',
        '[[features]]\nname = "sex"\ntype = "category"\ncategories = ["female", "male"]\n',
    ]
    spec = directory / "spec.toml"
    spec.write_text(
        'name = "penguins-frame"\ntask = "classification"\nestimator_file = "model.joblib"\n'
        'sample_data = "rows.csv"\ntarget = "species"\n' + "".join(features)
    )
    return spec


def served_answers(model_dir: Path, rows: list[list[Any]]) -> dict[str, Any]:
    with imported_app(model_dir) as app:
        event = http_api_event(body={"instances": rows}, query={"probabilities": "true"})
        answer: dict[str, Any] = response_json(app.handler(event, LambdaContext()))
    return answer


@pytest.mark.parametrize("engine", ["auto", "scikit-learn"])
def test_a_dataframe_fitted_pipeline_serves_the_estimators_answers(
    engine: str, dataframe_spec: Path, tmp_path: Path
) -> None:
    spec = load_spec(dataframe_spec)
    baked = bake_model(tmp_path / "package", engine, tmp_path / "cache", spec)
    estimator = joblib.load(dataframe_spec.parent / "model.joblib")
    rows = check_rows(spec).held_out
    frame = pd.DataFrame(rows, columns=spec.feature_names).infer_objects()

    answer = served_answers(tmp_path / "package" / PACKAGE_MODEL_DIR, [json_row(row) for row in rows])

    assert baked.serving_engine.name == ("compiled" if engine == "auto" else "scikit-learn")
    assert baked.serving_engine.dataframe_input == (engine == "scikit-learn")
    assert answer["predictions"] == estimator.predict(frame).tolist()
    assert [list(p.values()) for p in answer["probabilities"]] == estimator.predict_proba(frame).tolist()


def test_pandas_ships_only_when_the_estimator_is_called_with_a_dataframe(tmp_path: Path) -> None:
    requirements = package.FUNCTION_DIR / "requirements.txt"

    def pins(engine: str, dataframe_input: bool) -> set[str]:
        written = package.lambda_requirements(requirements, tmp_path, engine, dataframe_input)
        return {line.split("==")[0] for line in written.read_text().splitlines() if "==" in line}

    assert "pandas" in pins("scikit-learn", dataframe_input=True)
    assert "pandas" not in pins("scikit-learn", dataframe_input=False)
    assert "pandas" not in pins("compiled", dataframe_input=False)


@pytest.mark.parametrize("engine", ["auto", "scikit-learn"])
def test_the_build_ships_pandas_only_to_the_scikit_learn_engine_of_a_dataframe_fitted_model(
    engine: str, dataframe_spec: Path, tmp_path: Path, offline_build: dict[str, list[str]]
) -> None:
    package.main(["--out", str(tmp_path / "PredictFunction"), "--engine", engine, "--spec", str(dataframe_spec)])

    assert ("pandas" in offline_build["x86_64"]) == (engine == "scikit-learn")
