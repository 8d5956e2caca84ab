"""One router per resource; each route is thin: validate, call one logic function, shape the output."""
