// The atlas's search: unit ids and words from search_index.js, matched as you type.
const box = document.getElementById("search"), list = document.getElementById("results");
box.addEventListener("input", () => {
  const query = box.value.trim().toLowerCase();
  const hits = query ? window.ATLAS_INDEX.filter(u => (u.id + " " + u.name + " " + u.words)
    .toLowerCase().includes(query)).slice(0, 20) : [];
  list.innerHTML = hits.map(u => `<li><a href="${window.ATLAS_ROOT}${u.url}">${u.id}</a> ${u.name} · ${u.words}</li>`).join("");
});
