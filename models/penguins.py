"""The penguin model's recipe: impute, scale the measurements, one-hot encode island and sex,
then a multinomial logistic regression. Columns are positions in the spec's feature order."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MEASUREMENTS = [1, 2, 3, 4]
CATEGORIES = [0, 5]


def penguin_pipeline(C: float) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("measurements", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), MEASUREMENTS),
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                CATEGORIES,
            ),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("classify", LogisticRegression(C=C, max_iter=1000))])
