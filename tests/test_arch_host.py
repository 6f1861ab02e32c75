"""The host side of `make test-arch` without booting anything: cache names follow
the recipe, and a VM's results file is read the way the summary reports it."""

import dataclasses

from tests.arch import images, vm


def test_cache_names_carry_the_recipe_hash():
    s390x = images.ARCHES["s390x"]
    image = images.image_for(s390x)
    digest = s390x.recipe_hash()
    assert {p.name for p in (image.disk, image.kernel, image.initrd)} == {
        f"s390x-{digest}.ext4", f"s390x-{digest}.vmlinuz", f"s390x-{digest}.initrd"}
    assert images.ARCHES["armhf"].recipe_hash() != digest
    other = dataclasses.replace(s390x, kernel_package="linux-image-6.1.0-99-s390x")
    assert other.recipe_hash() != digest
    assert images.image_for(other).disk != image.disk


def test_recipe_covers_the_init_and_packages(monkeypatch):
    arch = images.ARCHES["armhf"]
    seen = {arch.recipe_hash()}
    monkeypatch.setattr(images, "INIT", images.INIT + "# changed\n")
    seen.add(arch.recipe_hash())
    monkeypatch.setattr(images, "PACKAGES", [*images.PACKAGES, "tcpdump"])
    seen.add(arch.recipe_hash())
    monkeypatch.setattr(images, "INITRAMFS_MODULES", [*images.INITRAMFS_MODULES, "9p"])
    seen.add(arch.recipe_hash())
    assert len(seen) == 4


def test_results_file(tmp_path):
    path = tmp_path / "results.txt"
    path.write_text("PASS a\nFAIL b: why\n1 passed, 1 failed\n")
    out = vm.Outcome("s390x")
    vm._read_results(path, out)
    assert (out.passed, out.failed, out.lines, out.error) == (1, 1, ["PASS a", "FAIL b: why"], None)

    hung = vm.Outcome("s390x", error="timed out after 900 s")
    path.write_text("PASS a\n1 passed, 0 failed\n")
    vm._read_results(path, hung)
    assert (hung.passed, hung.failed) == (1, 1)  # the results, then the hang

    cut = vm.Outcome("armhf")
    path.write_text("PASS a\nFAIL b: why\n")
    vm._read_results(path, cut)
    assert (cut.passed, cut.failed, cut.error) == (0, 1, "the results have no summary line")

    missing = vm.Outcome("armhf", error="timed out after 900 s")
    vm._read_results(tmp_path / "none.txt", missing)
    assert (missing.passed, missing.failed, missing.error) == (0, 1, "timed out after 900 s")
