"""The tenant API and console: FastAPI, run by Mangum in Lambda and by uvicorn locally."""
