"""Jobs: every job by id (the URL's ?job=N), live status and progress, a clean log, cancel / rerun with a
confirmation that names the job, links to the job's run and "Try it" for a finished fine-tune."""
from __future__ import annotations

import streamlit as st

from app import facade as F
from app import state, ui
from app.facade import ACTIVE, LIVE, SqlgenieError, Status


@st.dialog("Cancel a job")
def _confirm_cancel(job_id: int, label: str) -> None:
    st.write(f"Cancel **job #{job_id}** ({label})? Its processes are stopped; a training run keeps its last "
             "complete checkpoint and can be resumed.")
    c1, c2 = st.columns(2)
    if c1.button(f"Yes, cancel job #{job_id}", type="primary"):
        try:
            F.cancel(job_id)
            ui.flash(f"job #{job_id} cancelled")
        except SqlgenieError as e:
            ui.flash(str(e), error=True)
        st.rerun()
    if c2.button("Keep it"):
        st.rerun()


@st.dialog("Run a job again")
def _confirm_rerun(job_id: int, label: str) -> None:
    st.write(f"Queue **job #{job_id}** ({label}) again as a new job? A training rerun is a new run: the old run "
             "stays as it is.")
    if st.button(f"Yes, rerun job #{job_id}", type="primary"):
        new = F.rerun(job_id)
        st.query_params["job"] = str(new)
        ui.flash(f"job #{new} queued (a rerun of #{job_id})")
        st.rerun()


def _progress_text(j) -> str:
    p = ui.progress(j) if j.status in LIVE else None
    return f"{p[0]}/{p[1]} {p[3]}" if p else ""


def page() -> None:
    st.header("Jobs")
    ui.show_flash()

    @st.fragment(run_every=2)
    def table():
        F.schedule()  # reconcile + start what waits
        jobs = F.jobs(200)
        if not jobs:
            st.info("No jobs yet: start one on the New job page.")
            return
        st.dataframe([{"id": j.id, "status": j.status, "kind": j.kind, "name": j.name,
                       "progress": _progress_text(j), "GPUs": ",".join(map(str, j.gpus)) or "-",
                       "duration": ui.fmt_s(j.duration()), "created": ui.ago(j.created)} for j in jobs],
                     hide_index=True, width="stretch", key="jobs_table")

    table()
    jobs = F.jobs(200)
    if not jobs:
        return
    ids = [j.id for j in jobs]
    by_id = {j.id: j for j in jobs}
    wanted = st.query_params.get("job", "")
    current = int(wanted) if wanted.isdigit() and int(wanted) in by_id else ids[0]
    # the selection is the job id in the URL: new jobs appearing in the list cannot move it
    pick = st.selectbox("Job", ids, index=ids.index(current),
                        format_func=lambda i: f"#{i} {by_id[i].kind} {by_id[i].name} ({by_id[i].status})")
    if str(pick) != wanted:
        st.query_params["job"] = str(pick)
    j = by_id[pick]
    label = f"{j.kind} {j.name}"
    cols = st.columns(5)
    if j.status in ACTIVE and cols[0].button(f"Cancel #{pick}", key=f"cancel-{pick}"):
        _confirm_cancel(pick, label)
    if cols[1].button(f"Rerun #{pick}", key=f"rerun-{pick}"):
        _confirm_rerun(pick, label)
    run = F.run_of_job(pick) if j.kind == "train" else None
    if run is not None:
        cols[2].page_link(state.PAGES["Training"], label=f"Open run {run.id.split('/')[-1]}",
                          query_params={"run": run.id})
        if run.has_output() and cols[3].button("Try it", key=f"try-{pick}", type="primary",
                                               help="serve this run's adapter beside its base model (a full "
                                                    "fine-tune: its model), then try it in the playground"):
            try:
                job, dep, model = F.try_run(run)
                ui.flash(f"serving {model} (job #{job}, deployment {dep})")
                st.session_state["try"] = (dep, run.name, F.compare_with(run, dep, model))
                st.rerun()
            except SqlgenieError as e:
                st.error(str(e))
    tried = st.session_state.get("try")
    if tried:
        dep, _, b = tried
        st.link_button(f"Open the playground on {dep}: " + (f"base vs {b}" if b and " @ " not in b else
                                                          f"the fine-tune vs {b}" if b else "the fine-tune"),
                       F.playground_url(dep, dep, b))

    @st.fragment(run_every=2)
    def detail():
        jj = F.job(pick)
        st.markdown(f"**#{jj.id} {jj.kind} `{jj.name}`**: {ui.status_text(jj.status)}"
                    + (f", exit code {jj.exit_code}" if jj.exit_code is not None else "")
                    + (f", {ui.fmt_s(jj.duration())}" if jj.started else ""))
        if jj.note:
            st.caption(jj.note)
        p = ui.progress(jj) if jj.status in LIVE else None
        if p:
            done, total, eta, what = p
            st.progress(min(1.0, done / total), text=f"{done} / {total} {what}" + (f", about {ui.fmt_s(eta)} left"
                                                                                    if eta else ""))
        if jj.error and jj.status == Status.FAILED:
            st.error(ui.clean_log(jj.error)[-1500:])
        st.code(ui.job_log(jj, 30) or "(no output yet)", language="text", wrap_lines=True)

    detail()


page()
