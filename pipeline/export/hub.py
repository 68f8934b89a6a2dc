"""Upload an exported folder to the Hugging Face Hub as a model repo (token from HF_TOKEN).

    from pipeline.export.hub import push
    push(Path("runs/x/export/merged"), "me/sqlgenie-8b", private=True)

`upload_large_folder` is resumable (it keeps its progress in the folder's .cache), so a broken upload
continues where it stopped. With no network or no token the error is one line saying which.
"""
from __future__ import annotations

from pathlib import Path

from core import envs
from core.errors import SqlgenieError


class HubError(SqlgenieError):
    """The upload could not start or did not finish."""


def push(folder: Path, repo_id: str, private: bool = True, token: str | None = None) -> str:
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = token or envs.text("HF_TOKEN")
    if not token:
        raise HubError("hub push needs a token: set HF_TOKEN (a write token from huggingface.co/settings/tokens)")
    if "/" not in repo_id:
        raise HubError(f"export.push_repo {repo_id!r}: expected `user/name` or `org/name`")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_large_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", private=private)
    except HfHubHTTPError as e:
        raise HubError(f"hub push to {repo_id}: {str(e).splitlines()[0]}") from None
    except (httpx.TransportError, OSError) as e:
        raise HubError(f"hub push to {repo_id}: the Hub cannot be reached ({type(e).__name__}); "
                       f"the export is kept at {folder}: push it again when online") from None
    return f"https://huggingface.co/{repo_id}"
