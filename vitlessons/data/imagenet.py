"""Labelled ImageNet-style images for the robustness chapter: Imagenette, ImageNet-R, ImageNet-A and ImageNet val.

* Imagenette (Jeremy Howard, fast.ai; https://github.com/fastai/imagenette): 10 easily told ImageNet classes,
  Apache 2.0; the images come from ImageNet. Its ``val`` split (3,925 images) stands in for ImageNet val.
* ImageNet-R(enditions): 30,000 art, cartoons, sculptures... of 200 ImageNet classes. Hendrycks et al., "The Many
  Faces of Robustness", ICCV 2021 (https://github.com/hendrycks/imagenet-r).
* ImageNet-A: 7,500 natural adversarial examples of 200 ImageNet classes. Hendrycks, Zhao, Basart, Steinhardt and
  Song, "Natural Adversarial Examples", CVPR 2021 (https://github.com/hendrycks/natural-adv-examples).
* ImageNet val: not downloadable without an account; point ``VITLESSONS_IMAGENET_VAL`` at a folder of 1000 wnid
  subfolders and ``paper_images`` uses it instead of Imagenette.

ImageNet-R and -A are scored as in their papers: a 1000-way model's logits restricted to the 200 classes, which
``load_model(name, imagenet_classes=dataset.imagenet_classes)`` does (labels index into those classes).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from timm.data import ImageNetInfo
from torch.utils.data import Dataset
from torchvision.transforms.functional import pil_to_tensor

from vitlessons import config
from vitlessons.data.archives import Archive, extracted, fetch_archive
from vitlessons.data.download import exit_status
from vitlessons.data.stimuli import evenly_spaced
from vitlessons.tensors import centre_crop, resize_short_side

FETCH_COMMAND = "vitlessons fetch-images {name}"
IMAGENET_VAL_VARIABLE = "VITLESSONS_IMAGENET_VAL"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# Sizes and SHA-256 from tensorflow/datasets: tensorflow_datasets/datasets/imagenette/checksums.tsv,
# tensorflow_datasets/datasets/imagenet_r/checksums.tsv and tensorflow_datasets/datasets/imagenet_a/checksums.tsv.
# fastai/fastai fastai/data/checks.txt gives the same size for imagenette2-320.tgz (341663724).
ARCHIVES: dict[str, Archive] = {name: Archive(title, url, size, sha256, folder, FETCH_COMMAND.format(name=name))
                                 for name, title, url, size, sha256, folder in (
    ("imagenette", "Imagenette", "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz", 341_663_724,
     "569b4497c98db6dd29f335d1f109cf315fe127053cedf69010d047f0188e158c", "imagenette2-320"),
    ("imagenet-r", "ImageNet-R", "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar", 2_191_079_936,
     "18c6bf493b39a0d975d48e587437f562caab9c52ae6327dcfa9dd8eb54aa1b52", "imagenet-r"),
    ("imagenet-a", "ImageNet-A", "https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar", 687_552_512,
     "3bb3632277e6ba6392ea64c02ddbf4dd2266c9caffd6bc09c9656d28f012589e", "imagenet-a"),
)}
DOWNLOAD_MB: dict[str, float] = {name: round(archive.size / 1e6, 1) for name, archive in ARCHIVES.items()}
LICENCE_NOTES = {
    "imagenette": "Imagenette by Jeremy Howard (fast.ai), Apache 2.0 (https://github.com/fastai/imagenette); "
                  "its images come from ImageNet, whose terms apply to them.",
    "imagenet-r": "ImageNet-R: Hendrycks et al., The Many Faces of Robustness, ICCV 2021. "
                  "See https://github.com/hendrycks/imagenet-r for its terms and cite the paper.",
    "imagenet-a": "ImageNet-A: Hendrycks et al., Natural Adversarial Examples, CVPR 2021. "
                  "See https://github.com/hendrycks/natural-adv-examples for its terms and cite the paper.",
}

# The 10 classes of Imagenette, from pytorch/vision torchvision/datasets/imagenette.py (_WNID_TO_CLASS).
IMAGENETTE_WNIDS = (
    "n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257",
)

# The 200 classes of ImageNet-R, sorted: hendrycks/imagenet-r eval.py (commit 3131cac), set `imagenet_r_wnids`;
# their ImageNet indices agree with the list commented there under `imagenet_r_indices`.
IMAGENET_R_WNIDS = (
    "n01443537", "n01484850", "n01494475", "n01498041", "n01514859", "n01518878", "n01531178", "n01534433",
    "n01614925", "n01616318", "n01630670", "n01632777", "n01644373", "n01677366", "n01694178", "n01748264",
    "n01770393", "n01774750", "n01784675", "n01806143", "n01820546", "n01833805", "n01843383", "n01847000",
    "n01855672", "n01860187", "n01882714", "n01910747", "n01944390", "n01983481", "n01986214", "n02007558",
    "n02009912", "n02051845", "n02056570", "n02066245", "n02071294", "n02077923", "n02085620", "n02086240",
    "n02088094", "n02088238", "n02088364", "n02088466", "n02091032", "n02091134", "n02092339", "n02094433",
    "n02096585", "n02097298", "n02098286", "n02099601", "n02099712", "n02102318", "n02106030", "n02106166",
    "n02106550", "n02106662", "n02108089", "n02108915", "n02109525", "n02110185", "n02110341", "n02110958",
    "n02112018", "n02112137", "n02113023", "n02113624", "n02113799", "n02114367", "n02117135", "n02119022",
    "n02123045", "n02128385", "n02128757", "n02129165", "n02129604", "n02130308", "n02134084", "n02138441",
    "n02165456", "n02190166", "n02206856", "n02219486", "n02226429", "n02233338", "n02236044", "n02268443",
    "n02279972", "n02317335", "n02325366", "n02346627", "n02356798", "n02363005", "n02364673", "n02391049",
    "n02395406", "n02398521", "n02410509", "n02423022", "n02437616", "n02445715", "n02447366", "n02480495",
    "n02480855", "n02481823", "n02483362", "n02486410", "n02510455", "n02526121", "n02607072", "n02655020",
    "n02672831", "n02701002", "n02749479", "n02769748", "n02793495", "n02797295", "n02802426", "n02808440",
    "n02814860", "n02823750", "n02841315", "n02843684", "n02883205", "n02906734", "n02909870", "n02939185",
    "n02948072", "n02950826", "n02951358", "n02966193", "n02980441", "n02992529", "n03124170", "n03272010",
    "n03345487", "n03372029", "n03424325", "n03452741", "n03467068", "n03481172", "n03494278", "n03495258",
    "n03498962", "n03594945", "n03602883", "n03630383", "n03649909", "n03676483", "n03710193", "n03773504",
    "n03775071", "n03888257", "n03930630", "n03947888", "n04086273", "n04118538", "n04133789", "n04141076",
    "n04146614", "n04147183", "n04192698", "n04254680", "n04266014", "n04275548", "n04310018", "n04325704",
    "n04347754", "n04389033", "n04409515", "n04465501", "n04487394", "n04522168", "n04536866", "n04552348",
    "n04591713", "n07614500", "n07693725", "n07695742", "n07697313", "n07697537", "n07714571", "n07714990",
    "n07718472", "n07720875", "n07734744", "n07742313", "n07745940", "n07749582", "n07753275", "n07753592",
    "n07768694", "n07873807", "n07880968", "n07920052", "n09472597", "n09835506", "n10565667", "n12267677",
)

# The 200 classes of ImageNet-A, sorted: hendrycks/natural-adv-examples eval.py (commit 0777070) gives them as
# ImageNet indices (the keys of `thousand_k_to_200` not mapped to -1); these are the wnids at those indices.
IMAGENET_A_WNIDS = (
    "n01498041", "n01531178", "n01534433", "n01558993", "n01580077", "n01614925", "n01616318", "n01631663",
    "n01641577", "n01669191", "n01677366", "n01687978", "n01694178", "n01698640", "n01735189", "n01770081",
    "n01770393", "n01774750", "n01784675", "n01819313", "n01820546", "n01833805", "n01843383", "n01847000",
    "n01855672", "n01882714", "n01910747", "n01914609", "n01924916", "n01944390", "n01985128", "n01986214",
    "n02007558", "n02009912", "n02037110", "n02051845", "n02077923", "n02085620", "n02099601", "n02106550",
    "n02106662", "n02110958", "n02119022", "n02123394", "n02127052", "n02129165", "n02133161", "n02137549",
    "n02165456", "n02174001", "n02177972", "n02190166", "n02206856", "n02219486", "n02226429", "n02231487",
    "n02233338", "n02236044", "n02259212", "n02268443", "n02279972", "n02280649", "n02281787", "n02317335",
    "n02325366", "n02346627", "n02356798", "n02361337", "n02410509", "n02445715", "n02454379", "n02486410",
    "n02492035", "n02504458", "n02655020", "n02669723", "n02672831", "n02676566", "n02690373", "n02701002",
    "n02730930", "n02777292", "n02782093", "n02787622", "n02793495", "n02797295", "n02802426", "n02814860",
    "n02815834", "n02837789", "n02879718", "n02883205", "n02895154", "n02906734", "n02948072", "n02951358",
    "n02980441", "n02992211", "n02999410", "n03014705", "n03026506", "n03124043", "n03125729", "n03187595",
    "n03196217", "n03223299", "n03250847", "n03255030", "n03291819", "n03325584", "n03355925", "n03384352",
    "n03388043", "n03417042", "n03443371", "n03444034", "n03445924", "n03452741", "n03483316", "n03584829",
    "n03590841", "n03594945", "n03617480", "n03666591", "n03670208", "n03717622", "n03720891", "n03721384",
    "n03724870", "n03775071", "n03788195", "n03804744", "n03837869", "n03840681", "n03854065", "n03888257",
    "n03891332", "n03935335", "n03982430", "n04019541", "n04033901", "n04039381", "n04067472", "n04086273",
    "n04099969", "n04118538", "n04131690", "n04133789", "n04141076", "n04146614", "n04147183", "n04179913",
    "n04208210", "n04235860", "n04252077", "n04252225", "n04254120", "n04270147", "n04275548", "n04310018",
    "n04317175", "n04344873", "n04347754", "n04355338", "n04366367", "n04376876", "n04389033", "n04399382",
    "n04442312", "n04456115", "n04482393", "n04507155", "n04509417", "n04532670", "n04540053", "n04554684",
    "n04562935", "n04591713", "n04606251", "n07583066", "n07695742", "n07697313", "n07697537", "n07714990",
    "n07718472", "n07720875", "n07734744", "n07749582", "n07753592", "n07760859", "n07768694", "n07831146",
    "n09229709", "n09246464", "n09472597", "n09835506", "n11879895", "n12057211", "n12144580", "n12267677",
)


@functools.lru_cache(maxsize=1)
def _imagenet_info() -> ImageNetInfo:
    """timm's ImageNet metadata (wnids and descriptions), read once."""
    return ImageNetInfo()


def imagenet_wnids() -> tuple[str, ...]:
    """ImageNet's 1000 wnids in class-index order (timm ships them), to turn folder names into class indices."""
    return tuple(_imagenet_info().label_names())


@functools.lru_cache(maxsize=1)
def _imagenet_index() -> dict[str, int]:
    """Class index of each ImageNet wnid."""
    return {wnid: index for index, wnid in enumerate(imagenet_wnids())}


def imagenet_indices(wnids: Sequence[str]) -> tuple[int, ...]:
    """The ImageNet class indices of ``wnids``, to select a 1000-way model's outputs for a 200-class set."""
    unknown = [w for w in wnids if w not in _imagenet_index()]
    if unknown:
        raise ValueError(f"not ImageNet wnids: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    return tuple(_imagenet_index()[w] for w in wnids)


def _class_folders(root: Path, wnids: Sequence[str] | None, hint: str) -> tuple[str, ...]:
    """The wnid subfolders of ``root`` to use (all, or those in ``wnids``), in ImageNet order."""
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist; {hint}")
    present = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    wanted = present if wnids is None else list(wnids)
    imagenet_indices(wanted)  # a name that is no ImageNet wnid is an error, not a class quietly dropped
    return tuple(sorted(set(wanted) & set(present), key=_imagenet_index().__getitem__))


def _images(folder: Path) -> list[Path]:
    """The image files of one class folder in sorted order, so indices and previews are deterministic."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def read_image(path: Path, size: int) -> torch.Tensor:
    """An image as RGB floats in [0, 1]: shorter side to 256 * size / 224 (bilinear, antialiased), centre crop."""
    with Image.open(path) as image:
        pixels = pil_to_tensor(image.convert("RGB")).float().div_(255.0)
    return centre_crop(resize_short_side(pixels[None], size * 256 // 224, "bilinear"), size)[0].contiguous()


class ImageFolderSet(Dataset):
    """Images in one subfolder per ImageNet wnid, labelled by class, prepared as ImageNet evaluations prepare them.

    ``dataset[i]`` is ``(image, label)``: a float tensor (3, size, size) in [0, 1], and the position of the image's
    class in ``imagenet_classes`` (ImageNet indices of the class folders present, in ImageNet order). Each image's
    shorter side is resized to 256 * size / 224 pixels (bilinear, antialiased) and the centre size x size cropped:
    the standard protocol (Resize(256), CenterCrop(224) at 224), which ImageNet-C and ImageNet-R/-A use.
    ``wnids`` keeps only those classes; ``limit`` keeps that many images, evenly spaced over the sorted files, so a
    preview covers every class.
    """

    def __init__(self, root: str | Path, wnids: Sequence[str] | None = None, size: int = 224,
                 limit: int | None = None, *, hint: str | None = None) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"size must be a positive int (pixels per side), got {size!r}")
        self.root, self.size = Path(root).expanduser(), size
        hint = hint or f"fetch a dataset with `{FETCH_COMMAND.format(name='imagenette|imagenet-r|imagenet-a')}`"
        self.wnids = _class_folders(self.root, wnids, hint)
        self.imagenet_classes = imagenet_indices(self.wnids)
        samples = [(path, label) for label, wnid in enumerate(self.wnids) for path in _images(self.root / wnid)]
        if not samples:
            raise FileNotFoundError(f"{self.root} holds no .jpg, .jpeg or .png images in wnid subfolders; {hint}")
        self.samples: list[tuple[Path, int]] = evenly_spaced(samples, limit)

    @property
    def labels(self) -> list[str]:
        """The class names, in label order: timm's ImageNet descriptions, as the models' own labels are."""
        return [_imagenet_info().index_to_description(i) for i in self.imagenet_classes]

    def __len__(self) -> int:
        """Number of images (after ``limit``)."""
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """One preprocessed image and its label."""
        path, label = self.samples[index]
        return read_image(path, self.size), label


def _archive(name: str) -> Archive:
    """The archive of dataset ``name``, or an error listing the names there are."""
    if name not in ARCHIVES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(ARCHIVES)}")
    return ARCHIVES[name]


def dataset_dir(name: str) -> Path:
    """Where ``fetch`` puts dataset ``name`` by default, so loader and fetcher agree without arguments."""
    return config.data_dir() / _archive(name).folder


def available(name: str, root: Path | None = None) -> bool:
    """Whether dataset ``name`` was fetched completely, so a chapter can choose paper scale without loading it."""
    return extracted(dataset_dir(name) if root is None else Path(root).expanduser(), _archive(name))


def _fetch_hint(name: str, root: Path) -> str:
    """The exact command that fills ``root``, so an error message can be pasted into a shell."""
    command = FETCH_COMMAND.format(name=name)
    return command if root == dataset_dir(name) else f"{command} --dest {root}"


def _fetched(name: str, root: Path | None) -> Path:
    """The folder of a completely fetched dataset, or an error naming the command that fetches it."""
    root = dataset_dir(name) if root is None else Path(root).expanduser()
    if not available(name, root):
        state = "is incomplete (no marker of a finished fetch)" if root.exists() else "does not exist"
        raise FileNotFoundError(f"{_archive(name).title} in {root} {state}. Fetch it with `{_fetch_hint(name, root)}`.")
    return root


def _load(name: str, wnids: Sequence[str], size: int, limit: int | None, root: Path | None,
          split: str = "") -> ImageFolderSet:
    """A fetched dataset's images, with the command that repairs it in the error for an empty folder."""
    folder = _fetched(name, root)
    return ImageFolderSet(folder / split, wnids, size, limit, hint=f"run `{_fetch_hint(name, folder)} --force`")


def imagenette(split: str = "val", size: int = 224, limit: int | None = None,
               root: Path | None = None) -> ImageFolderSet:
    """Imagenette's 10 classes; its ``val`` split (3,925 images) stands in for ImageNet val."""
    if split not in ("train", "val"):
        raise ValueError(f"Imagenette's split is 'train' or 'val', got {split!r}")
    return _load("imagenette", IMAGENETTE_WNIDS, size, limit, root, split)


def imagenet_r(size: int = 224, limit: int | None = None, root: Path | None = None) -> ImageFolderSet:
    """ImageNet-R's 30,000 renditions of 200 classes; score a 1000-way model on ``imagenet_classes`` only."""
    return _load("imagenet-r", IMAGENET_R_WNIDS, size, limit, root)


def imagenet_a(size: int = 224, limit: int | None = None, root: Path | None = None) -> ImageFolderSet:
    """ImageNet-A's 7,500 natural adversarial examples of 200 classes; score on ``imagenet_classes`` only."""
    return _load("imagenet-a", IMAGENET_A_WNIDS, size, limit, root)


def imagenet_val(size: int = 224, limit: int | None = None, wnids: Sequence[str] | None = None) -> ImageFolderSet:
    """ImageNet's validation images from ``$VITLESSONS_IMAGENET_VAL``; ``wnids=IMAGENET_R_WNIDS`` gives R's baseline."""
    value = os.environ.get(IMAGENET_VAL_VARIABLE, "").strip()
    if not value:
        raise FileNotFoundError(
            f"{IMAGENET_VAL_VARIABLE} is not set. ImageNet cannot be downloaded without an account "
            "(https://image-net.org); set it to the validation folder with one subfolder per wnid "
            "(n01440764/ ... n15075141/), or use Imagenette, which `paper_images` does when it is unset."
        )
    return ImageFolderSet(value, wnids, size, limit, hint=f"check {IMAGENET_VAL_VARIABLE}={value}")


def paper_images_available() -> bool:
    """Whether ``paper_images`` has something to load: ImageNet's validation set named, or Imagenette fetched."""
    return bool(os.environ.get(IMAGENET_VAL_VARIABLE, "").strip()) or available("imagenette")


def paper_images(size: int = 224, limit: int | None = None) -> ImageFolderSet:
    """Clean labelled images for paper scale: ImageNet val if ``VITLESSONS_IMAGENET_VAL`` is set, else Imagenette val."""
    if os.environ.get(IMAGENET_VAL_VARIABLE, "").strip():
        return imagenet_val(size, limit)
    return imagenette("val", size, limit)


def _parser() -> argparse.ArgumentParser:
    """Command-line options of ``vitlessons fetch-images`` (also ``python -m vitlessons.data.imagenet``)."""
    parser = argparse.ArgumentParser(prog="vitlessons fetch-images",
                                     description="Download, verify (SHA-256) and unpack one ImageNet-style test set; "
                                                 "an interrupted download resumes.")
    parser.add_argument("name", choices=list(ARCHIVES), help="which dataset")
    parser.add_argument("--dest", type=Path, default=None, help=f"target folder (default: {config.data_dir()}/<its folder>)")
    parser.add_argument("--force", action="store_true", help="download and unpack again, even if complete")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the fetch from the command line; exits non-zero with a one-paragraph message, no traceback."""
    args = _parser().parse_args(argv)
    print(LICENCE_NOTES[args.name])
    dest = dataset_dir(args.name) if args.dest is None else args.dest
    status = exit_status(lambda: fetch_archive(ARCHIVES[args.name], dest, force=args.force))
    if status == 0:
        print(f"{ARCHIVES[args.name].title} ready in {dest}")
    return status


if __name__ == "__main__":
    sys.exit(main())
