"""App-facing views: the dashboard's data, its charts, launching jobs and who may launch them."""
