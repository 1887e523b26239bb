#!/usr/bin/python3
"""Checks a slidestream.patches/1 HDF5 file with h5py: CLAM's coords conventions and our groups.

Usage: /usr/bin/python3 tests/check_clam_h5.py FILE.h5
Prints each check; exits 1 on the first group of mismatches (all are listed), 2 on bad usage.
Layout: docs/FORMATS.md, section "HDF5 patch dataset (slidestream.patches/1)".
"""
import math
import sys

import h5py
import numpy as np

FORMAT = "slidestream.patches/1"
SLIDE_ATTRS = ("slide_path", "quickhash", "mpp", "mpp_source", "config_yaml", "complete",
               "output_spacing_um", "output_size_px")
CLAM_ATTRS = ("patch_size", "patch_level", "downsample", "level_dim", "downsampled_level_dim",
              "name")


class Checker:
    def __init__(self):
        self.failures = []
        self.checked = 0

    def expect(self, condition, what):
        self.checked += 1
        if condition:
            print(f"ok    {what}")
        else:
            print(f"FAIL  {what}")
            self.failures.append(what)
        return condition


def as_str(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def check_per_patch(check, dataset, count, dtype, row_shape, label):
    check.expect(dataset.dtype == np.dtype(dtype), f"{label}: dtype {dataset.dtype} == {dtype}")
    check.expect(dataset.shape == (count,) + row_shape,
                 f"{label}: shape {dataset.shape} == {(count,) + row_shape}")
    check.expect(dataset.maxshape[0] is None, f"{label}: extendible along N (maxshape[0] None)")
    check.expect(dataset.chunks == (1,) + row_shape,
                 f"{label}: one patch per chunk {dataset.chunks}")


def check_branch(check, slide, name, branch, count):
    label = f"{name}/{branch.name.split('/')[-1]}"
    for attr in ("spacing_um", "size_px", "fov_um", "level"):
        check.expect(attr in branch.attrs, f"{label}: attr {attr}")
    if not all(a in branch.attrs for a in ("spacing_um", "size_px", "fov_um")):
        return
    width, height = (int(v) for v in branch.attrs["size_px"])
    spacing = float(branch.attrs["spacing_um"])
    fov = np.asarray(branch.attrs["fov_um"], dtype=float)
    check.expect(np.allclose(fov, [width * spacing, height * spacing]),
                 f"{label}: fov_um {fov.tolist()} == size_px * spacing_um")
    if check.expect("pixels" in branch and "valid" in branch, f"{label}: pixels and valid"):
        check_per_patch(check, branch["pixels"], count, "uint8", (height, width, 3),
                        f"{label}/pixels")
        check_per_patch(check, branch["valid"], count, "uint8", (height, width),
                        f"{label}/valid")
        values = np.unique(branch["valid"][...])
        check.expect(set(values.tolist()) <= {0, 255},
                     f"{label}/valid: values {values.tolist()} in {{0, 255}}")
    if "labels" in branch:
        check_per_patch(check, branch["labels"], count, "uint8", (height, width),
                        f"{label}/labels")


def check_coords(check, slide, name):
    coords = slide["coords"]
    count = coords.shape[0] if coords.ndim == 2 else 0
    check_per_patch(check, coords, count, "int64", (2,), f"{name}/coords")
    for attr in CLAM_ATTRS:
        check.expect(attr in coords.attrs, f"{name}/coords: CLAM attr {attr}")
    if not all(a in coords.attrs for a in CLAM_ATTRS) or "mpp" not in slide.attrs:
        return count
    check.expect(as_str(coords.attrs["name"]) == name, f"{name}/coords: name == group name")
    level_dim = np.asarray(coords.attrs["level_dim"])
    check.expect(level_dim.dtype == np.int64 and level_dim.shape == (2,),
                 f"{name}/coords: level_dim int64[2] {level_dim.tolist()}")
    check.expect(np.array_equal(coords.attrs["downsampled_level_dim"], level_dim),
                 f"{name}/coords: downsampled_level_dim == level_dim")
    downsample = np.asarray(coords.attrs["downsample"], dtype=float)
    check.expect(downsample.shape == (2,), f"{name}/coords: downsample has 2 values")
    if "branch_0" in slide:
        branch = slide["branch_0"]
        check.expect(int(coords.attrs["patch_level"]) == int(branch.attrs["level"]),
                     f"{name}/coords: patch_level == branch_0 level")
        mpp = np.asarray(slide.attrs["mpp"], dtype=float)
        fov_l0 = np.asarray(branch.attrs["fov_um"], dtype=float) / mpp
        expected = round(fov_l0[0] / downsample[0])
        check.expect(int(coords.attrs["patch_size"]) == expected,
                     f"{name}/coords: patch_size {int(coords.attrs['patch_size'])} == "
                     f"branch_0 FoV at patch_level {expected}")
        if "center_l0" in slide and count > 0:
            top_left = np.floor(slide["center_l0"][...] - fov_l0 / 2.0)
            check.expect(np.allclose(top_left, coords[...], atol=1.0),
                         f"{name}/coords: top-left of the branch_0 FoV around center_l0")
    return count


def check_slide(check, name, slide):
    for attr in SLIDE_ATTRS:
        check.expect(attr in slide.attrs, f"{name}: attr {attr}")
    if "complete" in slide.attrs:
        check.expect(int(slide.attrs["complete"]) == 1, f"{name}: complete == 1")
    if not check.expect("coords" in slide, f"{name}: coords dataset"):
        return
    count = check_coords(check, slide, name)
    for dataset, dtype, row in (("center_l0", "float64", (2,)), ("tile_index", "uint64", ()),
                                ("tissue_fraction", "float32", ())):
        if check.expect(dataset in slide, f"{name}: {dataset} dataset"):
            check_per_patch(check, slide[dataset], count, dtype, row, f"{name}/{dataset}")
    branches = sorted((k for k in slide if k.startswith("branch_")), key=lambda k: int(k[7:]))
    check.expect(branches and branches == [f"branch_{b}" for b in range(len(branches))],
                 f"{name}: branch groups {branches}")
    for branch in branches:
        check_branch(check, slide, name, slide[branch], count)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    check = Checker()
    with h5py.File(argv[1], "r") as f:
        check.expect(as_str(f.attrs.get("format", "")) == FORMAT, f"root: format == {FORMAT}")
        check.expect("slidestream_version" in f.attrs, "root: slidestream_version")
        slides = [k for k in f if isinstance(f[k], h5py.Group)]
        check.expect(len(slides) > 0, f"root: slide groups {slides}")
        for name in slides:
            check_slide(check, name, f[name])
    print(f"{check.checked} checks, {len(check.failures)} failed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
