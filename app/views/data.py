"""Data: bring your own training data (upload a Gretel JSONL / CSV or a Spider zip, its preview, the prepare
stage's validation report with a progress bar, "Train on this"), the uploads (each removable), every prepared
dataset (rows in = usable + dropped, by reason; token lengths), the bundled dataset's card and the OOD yardstick.
The upload shown is the URL's ?upload=NAME, so a reload shows it again."""
from __future__ import annotations

import json
import re

import streamlit as st

from app import facade as F
from app import state, ui
from app.facade import ACTIVE, LIVE, SqlgenieError, Status, UploadError


def _receive() -> None:
    """The uploader: a file is checked and stored once, its check started, and the page shows it."""
    n = st.session_state.setdefault("upload:n", 0)
    f = st.file_uploader("Training data file (.jsonl, .csv or a Spider .zip)", type=F.UPLOAD_TYPES,
                         key=f"upload:file:{n}")
    if f is None:
        return
    refused = st.session_state.setdefault("upload:refused", {})
    if f.file_id not in refused:
        with st.spinner(f"Reading {f.name} ..."):
            try:
                up = F.receive_upload(f.name, f.getvalue())
            except UploadError as e:
                refused[f.file_id] = str(e)
            else:
                try:
                    job = F.check_upload(up)
                    ui.flash(f"{up.name}: {up.rows} rows stored; job #{job} checks them as a training would")
                except SqlgenieError as e:
                    ui.flash(f"{up.name} is stored, but its check could not start: {e}", error=True)
                st.session_state["upload:n"] = n + 1          # an empty uploader for the next file
                st.query_params["upload"] = up.name
                st.rerun()
    st.error("Not stored: " + refused[f.file_id].replace("\n", "  \n"))


def _progress_line(job) -> str:
    """What the prepare stage does now (its last `prepare: k/N [what]` line)."""
    lines = [ln for ln in ui.job_log(job, 40).splitlines() if ln.startswith("prepare: ")]
    m = re.search(r"\[(.*)\]", lines[-1]) if lines else None
    return m.group(1) if m else "starting"


def _check_again(up: F.Upload, label: str) -> None:
    if st.button(label, key=f"recheck:{up.name}"):
        try:
            ui.flash(f"job #{F.check_upload(up)} checks {up.name} again")
        except SqlgenieError as e:
            ui.flash(str(e), error=True)
        st.rerun()


def _checking(up: F.Upload) -> None:
    """The check's progress, live; the whole page once it ends (the report and "Train on this")."""
    @st.fragment(run_every=2)
    def live():
        job = F.upload_check_job(up)
        if job is None or job.status not in ACTIVE:
            st.rerun()
        F.schedule()                     # start it when a core is free
        p = ui.progress(job) if job.status in LIVE else None
        if job.status == Status.QUEUED:
            st.progress(0.0, text=f"job #{job.id} waits for a free core (running jobs hold them)")
        elif p is None:
            st.progress(0.0, text=f"checking (job #{job.id}, the prepare stage): starting")
        else:
            st.progress(min(1.0, p[0] / p[1]), text=f"checking (job #{job.id}, the prepare stage): step {p[0]} of "
                                                     f"{p[1]}, {_progress_line(job)}")
    live()


def _train_on_this(up: F.Upload) -> None:
    st.page_link(state.PAGES["New job"], label=f"Train on this: a train job on {up.name}",
                 icon=":material/model_training:", query_params={"upload": up.name})


def _report(up: F.Upload) -> None:
    """The check's report: rows kept and dropped, "Train on this" when some rows are usable, every dropped row with
    its reason, the token lengths."""
    job = F.upload_check_job(up)
    if job is None:
        st.warning("Not checked yet.")
        _check_again(up, "Check it")
        return
    if job.status in ACTIVE:
        _checking(up)
        return
    rep = up.report() if job.status == Status.SUCCEEDED else None
    if rep is None:
        st.error(f"The check (job #{job.id}) {job.status}: " + ui.clean_log(job.error or "")[-800:])
        _check_again(up, "Check again")
        return
    src = next(iter(rep["sources"].values()))
    dropped = sum(src["dropped"].values())
    c = st.columns(5)
    c[0].metric("rows in", src["rows_in"])
    c[1].metric("usable", src["usable"])
    c[2].metric("dropped", dropped)
    c[3].metric("tokens a row (mean)", f"{rep['tokens']['mean']:.0f}")
    c[4].metric("longest / max_seq_len", f"{rep['tokens']['max']} / {rep['max_seq_len']}")
    st.caption(f"Gold SQL run on its own schema: {rep['gold_check']}. {rep['train_rows']} train + {rep['eval_rows']} "
               f"held-out rows; tokenizer `{rep['tokenizer']}`. Prepared by job #{job.id} into "
               f"`{up.check['prepared']}`, which a training with this config reuses.")
    if rep["train_rows"] > 0:
        _train_on_this(up)
    if dropped:
        st.dataframe([{"reason": r, "rows": n, "what it means": F.DROP_REASONS.get(r, "")}
                      for r, n in src["dropped"].items() if n], hide_index=True, width="stretch")
        rows = up.dropped()
        st.markdown(f"**Dropped rows** ({len(rows)}{' shown' if len(rows) < dropped else ''})")
        st.dataframe([{"where": r["where"], "reason": r["reason"], "question": r["question"]} for r in rows],
                     hide_index=True, width="stretch")
    png = up.lengths_plot()
    if png:
        st.image(str(png))


def _upload(up: F.Upload) -> None:
    st.subheader(f"Upload {up.name}")
    st.caption(f"{up.info['file']} ({up.format}, {up.rows} rows, {up.info['bytes'] / 1e6:.2f} MB), uploaded "
               f"{ui.ago(up.created)}; stored in `{up.dir}`")
    st.markdown("**Preview** (the first rows, as the loader reads them)")
    st.dataframe([{k: r[k] for k in ("where", "question", "schema", "sql")} for r in up.preview()],
                 hide_index=True, width="stretch")
    st.markdown("**Validation report** (the prepare stage: the loading and checks a training does)")
    _report(up)


def _forget_removal() -> None:
    st.session_state.pop("removing", None)


# open while the session names the upload being removed: a dialog's buttons rerun it, the page's Remove button
# does not stay pressed
@st.dialog("Remove an upload", on_dismiss=_forget_removal)
def _confirm_remove(name: str) -> None:
    try:
        up = F.upload(name)
    except SqlgenieError as e:
        st.error(str(e))
        return
    users = F.upload_users(up)
    st.write(f"Remove upload **{name}** ({up.info['file']}, {up.rows} rows)? Its file, preview and check are deleted.")
    if users:
        st.write("Runs trained on it keep their prepared data: " + ", ".join(f"`{r.id}`" for r in users))
    c1, c2 = st.columns(2)
    if c1.button(f"Yes, remove {name}", type="primary"):
        _forget_removal()
        try:
            ui.flash(F.remove_upload(up))
        except (SqlgenieError, OSError) as e:
            ui.flash(f"{name} could not be removed: {e}", error=True)
        if st.query_params.get("upload") == name:
            del st.query_params["upload"]
        st.rerun()
    if c2.button("Keep it"):
        _forget_removal()
        st.rerun()


def _uploads(ups: list[F.Upload]) -> None:
    st.subheader("Uploads")
    head = st.columns([3, 1, 1, 1, 2, 1])
    for col, text in zip(head, ["upload", "format", "rows", "usable", "uploaded", ""]):
        col.markdown(f"**{text}**")
    for up in ups[:50]:
        rep = up.report()
        usable = next(iter(rep["sources"].values()))["usable"] if rep else "not yet"
        c = st.columns([3, 1, 1, 1, 2, 1])
        c[0].markdown(f"[{up.name}](?upload={up.name})")
        for col, text in zip(c[1:5], [up.format, up.rows, usable, ui.ago(up.created)]):
            col.markdown(str(text))
        c[5].button("Remove", key=f"remove:{up.name}", on_click=st.session_state.update, args=({"removing": up.name},))
    if st.session_state.get("removing"):
        _confirm_remove(st.session_state["removing"])


def _prepared() -> None:
    reports = F.data_reports()
    st.subheader("Prepared data")
    if not reports:
        st.info("No prepared data yet: a train job prepares it, or run a prepare job.")
    for rep_path in reports:
        rep = json.loads(rep_path.read_text())
        dropped = sum(rep["dropped"].values())
        with st.expander(f"{rep_path.parent.name}: {rep['train_rows']} train / {rep['eval_rows']} eval rows, "
                         f"{dropped} dropped"):
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("rows in", rep.get("rows_in"))
            c2.metric("train rows", rep["train_rows"])
            c3.metric("mean tokens", f"{rep['tokens']['mean']:.0f}")
            c4.metric("dropped", dropped)
            st.dataframe([{"source": n, "rows in": s.get("rows_in"), "usable": s["usable"], "in mixture": s["in_mixture"],
                           **{k: v for k, v in s["dropped"].items() if v}} for n, s in rep["sources"].items()],
                         hide_index=True, width="stretch")
            png = rep_path.parent / "lengths.png"
            if png.is_file():
                st.image(str(png))


def _marks() -> None:
    """The playground's marks: how many, and the ones that can train turned into an upload (checked, then trained
    on like any other)."""
    marks = F.feedback_marks()
    if not marks:
        return
    right = sum(m.verdict == "right" for m in marks)
    taught = sum(m.verdict == "wrong" and bool(m.expected_sql.strip()) for m in marks)
    st.subheader("Answers marked in the playground")
    st.markdown(f"{len(marks)} marks: {right} right, {len(marks) - right} wrong ({taught} of them with the SQL that "
                f"was expected). {right + taught} can train; a wrong answer without the expected SQL trains nothing.")
    if st.button("Use the marks as training data", key="marks:upload", disabled=right + taught == 0,
                 help="writes them as Gretel rows, stored and checked as an upload; then Train on this"):
        try:
            up = F.marks_as_upload()
            job = F.check_upload(up)
            ui.flash(f"{up.name}: {up.rows} rows from the marks; job #{job} checks them as a training would")
            st.query_params["upload"] = up.name
        except SqlgenieError as e:
            ui.flash(str(e), error=True)
        st.rerun()


def page() -> None:
    st.header("Data")
    ui.show_flash()
    st.subheader("Bring your own training data")
    st.caption("A .jsonl or .csv file in the Gretel layout (sql_prompt, sql_context, sql; id, domain, sql_complexity, "
               "sql_task_type kept when present), or a Spider dataset as a .zip (tables.json, train_spider.json or "
               "dev.json, database/<db_id>/<db_id>.sqlite). It is stored under the home's uploads/ folder as given, "
               "checked by the prepare stage as a training would, and can then be trained on.")
    _receive()
    _marks()
    ups = F.uploads_list()
    names = [u.name for u in ups]
    wanted = st.query_params.get("upload", "")
    if ups:
        current = wanted if wanted in names else names[0]
        pick = st.selectbox("Upload", names, index=names.index(current),
                            format_func=lambda n: f"{n} ({ups[names.index(n)].rows} rows)")
        if pick != wanted:
            st.query_params["upload"] = pick
        _upload(ups[names.index(pick)])
        _uploads(ups)
    _prepared()
    with st.expander("OOD yardstick (hand-written, never trained on)"):
        try:
            qs = F.ood_questions()
            st.markdown(f"{len(qs)} questions over {len(F.ood_schemas())} schemas; `sqlgenie evaluate --split ood`")
        except SqlgenieError as e:
            st.warning(str(e))
    card = F.dataset_card()
    with st.expander("Bundled dataset card"):
        st.markdown(card.read_text(encoding="utf-8") if card.is_file() else "missing")


page()
