"""The report: leaderboard, statistics, ablations, the biology view, plots and the HTML page."""
