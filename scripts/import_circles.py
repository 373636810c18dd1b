# Usage: python3 scripts/import_circles.py src
# File-level import graph of src/ from `crate::a::b` paths; prints strongly connected components (>1 file).
import re,glob,os,sys
root=sys.argv[1] if len(sys.argv)>1 else 'src'
files={}
for p in glob.glob(root+'/**/*.rs',recursive=True):
    rel=os.path.relpath(p,root)[:-3]
    mod=rel.replace('/mod','').replace('/','::')
    if mod in ('lib','main'): continue
    files[mod]=open(p).read()
mods=set(files)
graph={m:set() for m in mods}
for m,s in files.items():
    for path in re.findall(r'crate::([a-z_:]+)',s):
        parts=path.split('::')
        # longest prefix that is a module
        for k in range(len(parts),0,-1):
            cand='::'.join(parts[:k])
            if cand in mods:
                if cand!=m and not m.startswith(cand+'::') : graph[m].add(cand)
                break
# tarjan
idx={};low={};st=[];on=set();out=[];c=[0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in graph[v]:
        if w not in idx: sc(w); low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: out.append(sorted(comp))
for v in sorted(mods):
    if v not in idx: sc(v)
print(len(out),"import circles (strongly connected groups of files)")
for comp in out: print(" ",len(comp),comp)
