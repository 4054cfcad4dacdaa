"""Every chapter's paper-scale branch runs: on random real architectures, miniature stimuli and no network.

Real users with internet run the paper-scale branch; without this test CI never would. With the weights,
the stimuli and CLIP's head in place (``paper_fakes``), ``auto`` must choose paper scale by itself, and a
preview (``VITLESSONS_PAPER_IMAGES``) keeps each evaluation to a few images. The numbers are meaningless and
not compared; the run must finish without an error and report on every paper-scale model.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from paper_fakes import fake_clip_head, fake_hub_cache, fake_imagenette, fake_sketches, fake_stimuli

from vitlessons.data.categories import SIXTEEN_CLASS_INDICES
from vitlessons.data.imagenet import dataset_dir
from vitlessons.models.registry import REGISTRY
from vitlessons.student import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_notebooks(ROOT / "notebooks")
PREVIEW = 32
# Chapter 5 sees each image under 76 corruption conditions and 36 block removals, with five 224 px models on CPU:
# two images exercise every code path there. Chapter 6 sees each image about 40 times with four of them; chapter 2
# turns each four ways for ResNet-50 and ViT-B/16, and eight give its probe four images to train on and four to test.
# Chapter 4 runs four 224 px models (CLIP twice) on the stimuli and on both sketch sets: eight of each suffice.
PREVIEWS = {"02_rotation": 8, "04_clip": 8, "05_robustness": 2, "06_intriguing_properties": 2}
REPORT = "print('PAPER MODELS:', *PAPER.models)"


@pytest.fixture(scope="module")
def paper_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Fake hub weights, stimuli and Imagenette, built once for all chapters."""
    root = tmp_path_factory.mktemp("paper")
    fake_hub_cache(root / "hf", REGISTRY)  # packaged and lab models are skipped
    fake_stimuli(root / "data" / "cue-conflict")
    for kind in ("edges", "silhouettes"):
        fake_sketches(root / "data" / kind)
    fake_imagenette(root / "data" / dataset_dir("imagenette").name)
    return {"HF_HUB_CACHE": str(root / "hf"), "VITLESSONS_DATA": str(root / "data")}


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_paper_scale_branch_runs(path: Path, tmp_path: Path, paper_world: dict, notebook_caches: dict,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    preview = PREVIEWS.get(path.stem, PREVIEW)
    for name, value in {**paper_world, "VITLESSONS_SCALE": "auto", "VITLESSONS_PAPER_IMAGES": str(preview)}.items():
        monkeypatch.setenv(name, value)  # lab models still come from the run's shared cache
    fake_clip_head("clip_b32", SIXTEEN_CLASS_INDICES)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT))
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    text = "\n".join(output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
                     for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)
    assert "Scale: paper (everything it needs is cached" in text and f"preview={preview} images" in text
    models = next(line for line in text.splitlines() if line.startswith("PAPER MODELS:")).split()[2:]
    assert models, "the chapter declares no paper-scale models"
    body = text.split("PAPER MODELS:")[0]
    assert all(name in body.split("Scale: paper")[1] for name in models), f"a model of {models} reported nothing"
