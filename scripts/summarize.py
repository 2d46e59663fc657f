"""Sums JUnit XML result files into one line: 'N passed, N failed'.

Exits non-zero when anything failed or when a suite left no results (a
runner that crashed before writing its file counts as a failure)."""
import sys
import xml.etree.ElementTree as ET

EXPECTED = ("unit-release.xml", "unit-asan.xml", "e2e.xml", "e2e-h2c.xml", "e2e-asan.xml", "e2e-asan-h2c.xml")


def count(path):
    root = ET.parse(path).getroot()
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main(paths):
    passed = failed = skipped = 0
    seen = set()
    for path in paths:
        try:
            p, f, s = count(path)
        except (OSError, ET.ParseError) as e:
            print(f"summary: cannot read {path}: {e}")
            failed += 1
            continue
        seen.add(path.rsplit("/", 1)[-1])
        print(f"summary: {path.rsplit('/', 1)[-1]}: {p} passed, {f} failed, {s} skipped")
        passed, failed, skipped = passed + p, failed + f, skipped + s
    for name in EXPECTED:
        if name not in seen:
            print(f"summary: {name} missing: that suite did not run")
            failed += 1
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
