"""One way to choose sites, shared by `sites.hooks(...)` and `lens.trace(...)`.

A selection is a site name, a glob (`"*.attn2.probs"`), a predicate (name -> bool), an address
that a resolver turns into a name (`12`, `"layer_12"`, `"conv_9"`), `"all"`, or a list of these.

    chosen = SiteSelector(["res_block_3", "*.attn2.probs"], valid=list(list_sites(pipe)))
    chosen("spatial_transformer_0.attn2.probs")    # True
"""

import fnmatch

GLOB_CHARACTERS = "*?["


def is_glob(pattern):
    return isinstance(pattern, str) and any(char in pattern for char in GLOB_CHARACTERS)


def _items(selection):
    if selection is None or selection == ():
        return []
    if isinstance(selection, (str, int)) or callable(selection):
        return [selection]
    return list(selection)


class SiteSelector:
    """Which sites a record or an edit applies to.

    Args:
        selection: see the module doc.
        valid: every site name of the model, when known: then a glob must match one of them
            and a name outside it goes to `resolve`. None (`hooks` around any call): names
            and globs are checked after the call against the sites it reached (`unmatched`).
        resolve: address -> site name (raises ValueError for a bad one); None: only names.
        what: "record" or "edit", for messages.
    """

    def __init__(self, selection, valid=None, resolve=None, what="record"):
        self.exact, self.globs, self.predicates = set(), [], []
        self.everything = selection == "all"
        for item in [] if self.everything else _items(selection):
            if callable(item):
                self.predicates.append(item)
            elif is_glob(item):
                if valid is not None and not fnmatch.filter(valid, item):
                    raise ValueError(f"{what} pattern {item!r} matches no site; sites look "
                                     f"like {examples(valid)} (lens.list_sites(pipe))")
                self.globs.append(item)
            elif isinstance(item, str) and (item in valid if valid is not None
                                            else resolve is None):
                self.exact.add(item)
            elif resolve is not None:
                self.exact.add(resolve(item))
            else:
                raise ValueError(f"{what} site {item!r}: give a site name, a glob or a "
                                 "predicate (addresses such as 12 or 'conv_9' need the model: "
                                 "lens.taps.run_with_cache or lens.trace resolve them)")

    def __bool__(self):
        return bool(self.everything or self.exact or self.globs or self.predicates)

    def __call__(self, name):
        return (self.everything or name in self.exact
                or any(fnmatch.fnmatchcase(name, glob) for glob in self.globs)
                or any(predicate(name) for predicate in self.predicates))

    def unmatched(self, seen):
        """Names and globs of the selection that match none of the site names in `seen`."""
        missing = sorted(self.exact - set(seen))
        return missing + [glob for glob in self.globs if not fnmatch.filter(seen, glob)]

    def key(self):
        """A hashable identity (compiled steps are cached by it)."""
        return (self.everything, tuple(sorted(self.exact)), tuple(self.globs),
                tuple(map(id, self.predicates)))


def examples(valid):
    """A few site names to show in an error message."""
    picks = [name for name in valid if name.endswith(("attn2.probs", "conv1", "attn.z"))][:3]
    return picks + ["sampler.eps"]
