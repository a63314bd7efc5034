# Vendored from lexis-project/Py4Lexis (https://github.com/lexis-project/Py4Lexis), commit 713e253e734ac6a0fb532deeb4c23d95000bc347,
# path src/py4lexis/workflows/__init__.py (empty upstream). Copyright (c) 2022 LEXIS, MIT License (the licence text is in tests/api/py4lexis_vendor/LICENSE).
