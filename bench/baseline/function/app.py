# The naive tutorial build this project is measured against: model loaded at import,
# a sync endpoint, Mangum's defaults (lifespan "auto"), plain model.predict.
from pathlib import Path

import joblib
import numpy as np
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

model = joblib.load(Path(__file__).parent / "model.joblib")
app = FastAPI()


class Features(BaseModel):
    features: list[float]


@app.get("/")
def home():
    return {"message": "Iris Prediction API is running"}


@app.post("/predict")
def predict(data: Features):
    prediction = model.predict(np.array(data.features).reshape(1, -1))
    return {"prediction": int(prediction[0])}


handler = Mangum(app)
