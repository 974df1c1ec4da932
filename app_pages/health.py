"""System health, live, and the alert feed from the reliability monitor."""
import streamlit as st

from core.views import charts
from core.views.dashboard import alert_counts, alerts_feed, system_rows
from core.lab.monitor import system_sample
from app_pages._common import store

st.title("System health")


@st.fragment(run_every=2)
def live():
    s = system_sample()
    cols = st.columns(4)
    cols[0].metric("CPU", f"{s['cpu_percent']:.0f}%")
    cols[1].metric("Memory", f"{s['mem_percent']:.0f}%")
    cols[2].metric("Max temperature", f"{s['temp_c_max']:.0f} °C" if "temp_c_max" in s else "not exposed")
    gpus = [k for k in s if k.endswith("_util_percent")]
    cols[3].metric("GPU", ", ".join(f"{s[k]:.0f}%" for k in gpus) if gpus else "none")


live()
rows = system_rows(store())
if rows:
    st.altair_chart(charts.system_lines(rows), width="stretch")
st.subheader("Alerts")
counts = alert_counts(store())
st.caption(", ".join(f"{k}: {v}" for k, v in counts.items()) or "no alerts")
st.dataframe(alerts_feed(store()), hide_index=True, width="stretch")
