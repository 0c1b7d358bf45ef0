"""The atlas as static HTML (Jinja2): a page per unit, an index per layer, a page per paper
circuit, and a search box over unit ids and words (`search_index.js`, a JSON array read by a few
lines of JavaScript; `search.json` holds the same for tools). No server: open `index.html`.

    files = AtlasFiles(out_dir)
    experiments.atlas.build_atlas(unet, run_dir, viz_jobs, activity_job, files, convs=[9])

Layout: index.html, layers/{group}.html, units/{group}/{unit}.html with its images beside it
({unit}_{job}.png visualizations, which the layer pages show too), examples/{prompt}.png,
circuits/paper_{rank}.html. The images only a unit page shows (the top examples' heat layers at
the site's resolution, laid over the generated image by CSS, and an SAE latent's preview) are
inline PNG data URIs: a few hundred bytes each, they would otherwise cost a 4 KiB block apiece
(the full tiny atlas: 190 MB on disk with them as files, for 52 MB of bytes). A link to a
unit that was not built (a part built with --units) is plain text, so every link resolves.
"""

import os

import numpy as np

from keras_sd_interp import io
from keras_sd_interp.reports.paper import render
from keras_sd_interp.reports.plotting.atlas import curve_points, heat_rgba

VIZ_LABELS = {"filters_corrected_descent": "corrected descent",
              "filters_corrected_ascent": "corrected ascent",
              "filters_paper_descent": "paper mode (whole layer, descent)",
              "sae_viz": "timestep-aware (diffusion preset)"}
PREVIEW = (("before", "as generated"), ("amplified", "amplified"), ("ablated", "ablated"))


def unit_url(group, unit):
    return f"units/{group}/{unit}.html"


def group_title(records):
    first = records[0]
    if first["group"] == "sae":
        return "SAE latents (spatial_transformer_8)"
    return f"conv {first['conv']}: {first['name']} (layer {first['layer_index']})"


class AtlasFiles:
    """Writes the atlas into `out_dir`."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def _path(self, *parts):
        return os.path.join(self.out_dir, *parts)

    def _save_page(self, relative, template, **context):
        depth = relative.count("/")
        io.save_text(self._path(relative), render(template, {"root": "../" * depth, **context}))

    def _links(self, links, built):
        return [{**link, "id": f"conv_{link['conv']}/{link['filter']}",
                 "url": unit_url(f"conv_{link['conv']}", link["filter"])
                 if (link["conv"], link["filter"]) in built else None} for link in links]

    def _unit_context(self, record, built):
        group, unit = record["group"], record["filter"]
        folder = f"units/{group}"
        viz = []
        for job, image in sorted(record["viz"].items()):
            name = f"{unit}_{job}.png"
            io.save_image(self._path(folder, name), np.asarray(image))
            viz.append({"label": VIZ_LABELS.get(job, job), "src": name})
        top_value = max([t["value"] for t in record["top"]] + [1e-8])
        examples = []
        for example in record["top"]:
            examples.append({**{k: v for k, v in example.items() if k != "map"},
                             "heat": io.png_data_uri(heat_rgba(example["map"], top_value)),
                             "image": f"../../examples/{example['prompt_index']}.png"})
        return {"record": record, "viz": viz, "examples": examples,
                "preview": self._preview(record.get("preview")),
                "incoming": self._links(record["incoming"], built),
                "outgoing": self._links(record["outgoing"], built),
                "curve": curve_points(record["activity"]),
                "first_t": record["timesteps"][0], "last_t": record["timesteps"][-1]}

    def _preview(self, preview):
        """An SAE latent's before / amplified / ablated images (inline) for the template."""
        if not preview:
            return None
        shown = []
        for key, label in PREVIEW:
            if key == "amplified":
                label = f"x{preview['amplify']:g}: {label}"
            change = preview.get(f"change_{key}")
            shown.append({"src": io.png_data_uri(np.asarray(preview[key])), "label": label,
                          "change": change})
        return {"prompt": preview["prompt"], "peak": preview["peak"], "images": shown}

    def write(self, by_group, circuits, images):
        """by_group: group -> list of unit records (`experiments.atlas`); circuits: the paper's
        circuits; images: prompt index -> uint8 generated image."""
        built = {(r["conv"], r["filter"]) for records in by_group.values() for r in records
                 if r["conv"] is not None}
        used = sorted({t["prompt_index"] for records in by_group.values() for r in records
                       for t in r["top"]})
        for index in used:
            io.save_image(self._path("examples", f"{index}.png"), np.asarray(images[index]))
        search = []
        for group, records in by_group.items():
            for record in records:
                self._save_page(unit_url(group, record["filter"]), "atlas_unit.html.j2",
                                title=record["id"], **self._unit_context(record, built))
                search.append({"id": record["id"], "name": record["name"],
                               "url": unit_url(group, record["filter"]),
                               "words": search_words(record)})
            self._save_page(f"layers/{group}.html", "atlas_layer.html.j2",
                            title=group_title(records), group=group, records=records)
        for circuit in circuits:
            steps = [{**s, "url": unit_url(f"conv_{s['conv']}", s["filter"])
                      if (s["conv"], s["filter"]) in built else None} for s in circuit["steps"]]
            self._save_page(f"circuits/paper_{circuit['rank']}.html", "atlas_circuit.html.j2",
                            title=f"paper circuit {circuit['rank']}", circuit=circuit,
                            steps=steps)
        groups = [{"group": g, "title": group_title(r), "count": len(r)}
                  for g, r in by_group.items()]
        self._save_page("index.html", "atlas_index.html.j2", title="U-Net atlas",
                        groups=groups, circuits=circuits)
        io.save_json(self._path("search.json"), search)
        io.save_text(self._path("search_index.js"),
                     "window.ATLAS_INDEX = " + json_text(search) + ";\n")
        io.save_text(self._path("atlas.js"), render("atlas.js.j2", {}))
        io.save_text(self._path("atlas.css"), render("atlas.css.j2", {}))


def search_words(record, num=3):
    """The words a unit is found by: its `num` strongest class words, then its selective class
    (SAE latents), without repeats."""
    words = [w["word"] for w in record["words"][:num]]
    selective = (record.get("selectivity") or {}).get("word")
    return " ".join(words + ([selective] if selective and selective not in words else []))


def json_text(obj):
    import json

    return json.dumps(obj, separators=(",", ":"))
